"""Reading and validating images: the one place that says what is wrong with a file.

Every problem raises :class:`ImageError` whose message names the file and the
reason in one line (the runner records it as a failure and goes on).
:func:`check_pair_files` finds most of them without decoding the pixels, so a
folder dataset drops such a pair once, before any method runs.

Accepted: 8-bit grey (PIL ``L``), 8-bit RGB, on either side of a pair, of any
size (the two the same), in any file format the installed Pillow decodes
(:data:`IMAGE_SUFFIXES`: PNG, BMP, TIFF, JPEG, GIF, PGM/PPM, then WebP, JPEG 2000,
TGA, ... as this Pillow was built); an RGB file whose three channels are equal (TNO
stores grey that way) is returned as grey.  Refused with a
reason: unreadable or truncated files, non-image files (and formats this Pillow
cannot decode), 16-bit or 32-bit
images, images with an alpha channel, palette images whose colours are not
expandable, and pairs whose sizes differ.

Also the two file helpers every writer shares: :func:`sha256_file` (the one
file hasher) and :func:`atomic_write` (write to a temporary file, then rename),
and :func:`pixel_sha256`, the digest of an image's pixels (not its file).
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError


class InputProblem(str):
    """One line about one input file that cannot be used (``"{path}: {reason}"``), which also keeps ``path``: a
    reader that needs the file (the runner records the pair id from it) does not split the line, where the path
    itself may hold ``": "``."""

    path: str
    reason: str

    def __new__(cls, path: str | Path, reason: str) -> "InputProblem":
        line = super().__new__(cls, f"{path}: {reason}")
        line.path, line.reason = str(path), reason
        return line

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # pickled with both parts
        return self.path, self.reason


class ImageError(ValueError):
    """A file that cannot be used as a fusion input; the message names it."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


#: The extensions a search by stem tries first, in this order (the lossless PNG first); every other extension
#: Pillow decodes comes after them (:func:`image_suffixes`).
PREFERRED_SUFFIXES: tuple[str, ...] = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".gif", ".pgm", ".ppm")

#: Pillow formats that need a library Pillow may be built without, by their :mod:`PIL.features` name.
_FORMAT_FEATURES = {"WEBP": "webp", "JPEG2000": "jpg_2000", "AVIF": "avif"}
#: Pillow formats not read although Pillow registers a reader: MPEG is identified, never decoded (Pillow's
#: "identify-only" formats besides the stub plugins); EPS/PostScript is a program, rendered by running Ghostscript.
_NOT_READ = frozenset({"MPEG", "EPS"})

if TYPE_CHECKING:
    #: Every file extension read as an image, in the order a search by stem tries them: :data:`PREFERRED_SUFFIXES`,
    #: then the others this Pillow decodes, sorted (computed on first use: :func:`image_suffixes`).
    IMAGE_SUFFIXES: tuple[str, ...]


def __getattr__(name: str) -> object:
    """``IMAGE_SUFFIXES`` on first use: listing Pillow's formats imports all its plugins (~25 ms), which
    ``import fusionbench`` does not pay."""
    if name == "IMAGE_SUFFIXES":
        return image_suffixes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _decodes(fmt: str) -> bool:
    """Whether files of Pillow's registered format ``fmt`` are read: a reader that decodes (not a stub, not
    :data:`_NOT_READ`), with its library where it needs one (:data:`_FORMAT_FEATURES`)."""
    from PIL import ImageFile, features

    factory = Image.OPEN.get(fmt, (None,))[0]
    if factory is None or fmt in _NOT_READ:
        return False
    if isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile):
        return False  # BUFR, GRIB, HDF5, WMF: identified only, unless the application installs a handler
    feature = _FORMAT_FEATURES.get(fmt)
    if feature is not None and (feature in features.modules or feature in features.codecs):
        return bool(features.check(feature))
    return True


@functools.cache
def image_suffixes() -> tuple[str, ...]:
    """:data:`IMAGE_SUFFIXES`: the extensions of every format this Pillow decodes (lower-case, with the dot),
    :data:`PREFERRED_SUFFIXES` first, in their order, then the others sorted.  Whether a file's mode is one we
    accept (8-bit grey or RGB) is decided per file, from its header (:func:`image_size`)."""
    Image.init()
    readable = {suffix for suffix, fmt in Image.registered_extensions().items() if _decodes(fmt)}
    return PREFERRED_SUFFIXES + tuple(sorted(readable - set(PREFERRED_SUFFIXES)))


@functools.cache
def _suffix_rank() -> dict[str, int]:
    return {suffix: rank for rank, suffix in enumerate(image_suffixes())}


def is_image_suffix(suffix: str) -> bool:
    """Whether a file with this extension (``.webp``, any case) is read as an image (:data:`IMAGE_SUFFIXES`)."""
    return suffix.lower() in _suffix_rank()


def _not_an_image(path: Path) -> str:
    """Why ``path`` (whose extension is not in :data:`IMAGE_SUFFIXES`) is not read: a format this Pillow registers
    but cannot decode is named as such, anything else is not an image file."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is not None:
        return (f"unsupported image format {path.suffix} ({fmt}: not read with this Pillow; "
                "fusionbench.io.IMAGE_SUFFIXES lists the extensions read)")
    return f"not an image file (extension {path.suffix or 'none'})"


def _search_order(path: Path) -> tuple[str, int, str]:
    """Name order by stem, and within a stem the order of :data:`IMAGE_SUFFIXES` (PNG first)."""
    rank = _suffix_rank()
    return path.stem, rank.get(path.suffix.lower(), len(rank)), path.name


def index_images(folder: str | Path, problems: list[str], *, report_other_files: bool = True) -> dict[str, Path]:
    """The image files of ``folder`` by stem, in name order (hidden files ignored; sub-folders are not read: one
    named like an image, ``x.png/``, is one line in ``problems``, and so is any other when ``report_other_files``;
    until session 37 those were skipped without a word, and a per-subject layout gave an empty dataset).

    A second file with the same stem (``a.png`` and ``a.jpg``: the one later in :data:`IMAGE_SUFFIXES`, so the
    lossless PNG is kept) is skipped with one
    line in ``problems`` naming it; so is a non-image file when
    ``report_other_files`` (a results folder keeps ``method.json`` beside its images).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    out: dict[str, Path] = {}
    try:
        entries = sorted(folder.iterdir(), key=_search_order)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot list the folder ({exc.strerror})", str(folder)) from None
    for path in entries:
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if is_image_suffix(path.suffix):  # named like an image: say so, not "missing partner"
                problems.append(InputProblem(path, "is a folder, not an image file, skipped"))
            elif report_other_files:  # per-subject folders: their images are not read, and the run says so
                problems.append(InputProblem(path, "is a sub-folder, not read (pairs are the image files of a/ "
                                                   "and b/ themselves), skipped"))
            continue
        if not is_image_suffix(path.suffix):
            if report_other_files:
                problems.append(InputProblem(path, f"{_not_an_image(path)}, skipped"))
            continue
        if path.stem in out:
            problems.append(InputProblem(path, f"a second image named {path.stem!r} (using {out[path.stem].name}), skipped"))
            continue
        out[path.stem] = path
    return out


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: the name of :func:`atomic_write`'s temporary file or folder, ``.<name>.<pid>@<host tag>.<12 hex>.tmp`` (group 1:
#: the pid; ``host``: :func:`host_tag` of the writer's machine, absent from the names written before session 32;
#: :func:`fusionbench.process_owner.sweep_stale` removes those a killed writer of this machine left)
ATOMIC_TEMP_NAME = re.compile(r"\..+\.(\d+)(?:@(?P<host>[0-9a-f]{8}))?\.[0-9a-f]{12}\.tmp")


@functools.lru_cache(maxsize=1)
def host_tag() -> str:
    """Eight hex digits of this machine's name (``platform.node()``), in temporary names: a sweep on a disk that
    several machines share judges only its own machine's files (a pid says nothing about another host's
    processes; session 32's review found a fetch on one Dask worker deleting another's download)."""
    import platform

    return hashlib.sha256(platform.node().encode()).hexdigest()[:8]


@contextmanager
def atomic_write(path: str | Path, *, keep_name: bool = False) -> Iterator[Path]:
    """Write ``path`` atomically: yield a temporary path beside it, renamed onto ``path`` when the block succeeds.

    The temporary file ``.<name>.<pid>@<host tag>.<random>.tmp`` (hidden, in the same folder, so the rename is atomic) is
    unique per process and thread, so writers racing for the same ``path`` never share one: each rename puts a
    complete file in place and the last one wins.  If the block raises, the temporary file is removed and
    ``path`` is left as it was.  The folder must exist.  With ``keep_name`` the temporary path is
    ``.<name>.<pid>@<host tag>.<random>.tmp/<name>``, a file of the final name in a temporary folder, for writers whose
    bytes depend on the file's name (``torch.save`` names its archive's root folder after it).

    The temporary file is flushed to the disk (``fsync``) before the rename, and the folder after it, so that a
    power cut or a kernel crash leaves the old file or the new one, never a renamed file whose data the kernel
    had not written yet (an empty or partly zero checkpoint, weights file or fused image).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}@{host_tag()}.{os.urandom(6).hex()}.tmp")
    if keep_name:
        tmp.mkdir()
        tmp = tmp / path.name
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if keep_name:
            shutil.rmtree(tmp.parent, ignore_errors=True)
    fsync_path(path.parent, folder=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (:func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def fsync_path(path: Path, *, folder: bool = False) -> None:
    """``fsync`` ``path``; for a folder (its entries: a rename) only where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:  # some systems and file systems cannot open a folder: the rename stands, unsynced
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


def writable_folder(path: str | Path, what: str, *, probe: bool = True, create: bool = True) -> Path:
    """``path`` as a folder, created with its parents if missing; else a one-line ``ValueError`` naming ``what``
    (a flag such as ``--out``) and the path: a file in its place, or a folder that cannot be created, or (with
    ``probe``) written: checked by creating and removing a temporary file in it.

    ``create=False`` creates and writes nothing (a command that may still stop before its work leaves no folder):
    the path, or its nearest existing parent, must be a folder this user may write into (``os.access``)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path}: is a file, not a folder")
    if not create:
        place = next(p for p in (path, *path.parents) if p.exists())
        if not place.is_dir():
            raise ValueError(f"{what} {path}: {place} is a file, not a folder")
        if not os.access(place, os.W_OK | os.X_OK):
            raise ValueError(f"{what} {path}: {place} is not writable")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        if probe:
            check = path / f".fusionbench-write-check.{os.getpid()}.{os.urandom(4).hex()}"
            check.touch()
            check.unlink()
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def _refuse_mode(path: Path, img: Image.Image) -> str:
    """The PIL mode ``img`` is read in (``L`` or ``RGB``), or :class:`ImageError` for one we refuse.

    Decided from the header alone: 16/32-bit and float images (16-bit colour too, which PIL opens as RGB),
    alpha channels
    (a palette with transparency too) and other modes are refused; a palette
    image is read as RGB, a 1-bit one as grey.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raise ImageError(path, f"{'16' if mode.startswith('I;16') else '32'}-bit image (mode {mode}); only 8-bit grey or RGB is supported")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        raise ImageError(path, f"image has an alpha channel (mode {mode}); save it as 8-bit grey or RGB")
    if mode in ("P", "1"):
        return "RGB" if mode == "P" else "L"
    if mode == "RGB" and any(raw.startswith(("RGB;16", "RGBX;16")) for raw in _raw_modes(img)):
        # PIL opens 16-bit-per-channel colour as 8-bit RGB, keeping each channel's high byte (until session 38
        # such a file was scored and fused so, without a word)
        raise ImageError(path, "16-bit colour image (16 bits per channel); only 8-bit grey or RGB is supported")
    if mode not in ("L", "RGB"):
        raise ImageError(path, f"unsupported image mode {mode}; only 8-bit grey or RGB is supported")
    return mode


def _raw_modes(img: Image.Image) -> list[str]:
    """The raw modes the decoder of ``img`` reads its tiles in (``'RGB;16B'`` for a 16-bit colour PNG)."""
    out = []
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else None)
        if isinstance(raw, str):
            out.append(raw)
    return out


def _not_a_file_reason(path: Path) -> str:
    """Why ``path`` (not a regular file) cannot be an image: a folder, a FIFO/device/socket, or nothing there."""
    if path.is_dir():
        return "is a folder, not an image file"
    if path.exists():
        return "is not a regular file (a FIFO, device or socket), not an image file"
    return "file not found"


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    """:class:`ImageError` for an image of more pixels than :func:`fusionbench.config.max_pixels` allows."""
    from .config import MAX_PIXELS_ENV, max_pixels

    limit = max_pixels()
    width, height = size
    if limit and width * height > limit:
        raise ImageError(path, f"size {width}x{height} ({width * height:,} pixels) is over the {limit:,}-pixel "
                               f"limit; set ${MAX_PIXELS_ENV} to a larger number (0: no limit) to read it")


def _open_image(path: Path) -> Image.Image:
    """``Image.open(path)`` with every failure to identify the file as one :class:`ImageError`, and an image over
    the pixel limit (:func:`_check_pixels`) refused before it is decoded."""
    if not path.is_file():
        raise ImageError(path, _not_a_file_reason(path))
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file (unidentified format)") from None
    except Image.DecompressionBombError as exc:  # over Pillow's own limit: not an OSError
        raise ImageError(path, f"image too large to read ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"unreadable or truncated image ({exc})") from None
    try:
        _check_pixels(path, img.size)
        _check_one_frame(path, img)
    except ImageError:
        img.close()
        raise
    return img


def _check_one_frame(path: Path, img: Image.Image) -> None:
    """:class:`ImageError` for a file of several frames (an animated PNG, GIF or WebP, a multi-page TIFF): which
    frame is the registered image is not for fusionbench to guess.  Before session 32 the first frame was read
    silently.  A camera JPEG with an MPO preview image is read: its first image is the photograph by definition.
    Counting the frames makes Pillow seek through the file: whatever a damaged file raises there is one
    :class:`ImageError` naming it (Pillow raises ``TypeError``, ``IndexError`` and others, not only ``OSError``)."""
    if img.format == "MPO":
        return
    try:
        several = bool(getattr(img, "is_animated", False))
        frames = getattr(img, "n_frames", None) if several else 1
    except Exception as exc:  # noqa: BLE001 - a damaged file: any error of Pillow's decoders
        raise ImageError(path, f"unreadable or truncated image ({type(exc).__name__}: {exc})") from None
    if several:
        raise ImageError(path, f"the file holds {frames if isinstance(frames, int) else 'several'} frames (an "
                               "animation or a multi-page file); save the one image of the pair as its own file")


def load_image(path: str | Path) -> np.ndarray:
    """Load an 8-bit image as uint8 H×W (grey) or H×W×3 (colour).

    Raises :class:`ImageError` naming the file for anything that is not a
    readable 8-bit grey or RGB image.
    """
    path = Path(path)
    with _open_image(path) as img:
        try:
            _refuse_mode(path, img)  # from the header, before load() empties img.tile (16-bit colour: its raw mode)
            img.load()
            mode = _refuse_mode(path, img)
            if mode != img.mode:
                img = img.convert(mode)
            array = np.asarray(img, dtype=np.uint8).copy()
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(path, f"unreadable or truncated image ({exc})") from None
    return _grey_if_channels_equal(array, copy=True)


def _grey_if_channels_equal(array: np.ndarray, *, copy: bool = False) -> np.ndarray:
    """An H×W×3 image whose three channels are equal as its H×W grey (TNO stores grey that way), else as it is."""
    if array.ndim == 3 and np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
        return array[..., 0].copy() if copy else array[..., 0]
    return array


def pixel_sha256(image: np.ndarray) -> str:
    """Hex sha256 of an 8-bit image's pixels: the digest of a fused image in the results store.

    The convention, so that anyone can check a PNG with numpy and hashlib alone: the image as
    :func:`load_image` returns it (uint8; an RGB image whose channels are equal counts as grey), digested as
    the ASCII header ``"{height}x{width}x{channels}\n"`` (channels 1 for grey) followed by the pixels'
    bytes in row-major (C) order, RGB interleaved.  It depends on the pixels only, not on the file (PNG
    encoders, zlib levels and metadata differ between installs), and the header keeps a 64×256 image apart
    from a 256×64 one with the same bytes.  ``ValueError`` for anything but a 2-D or H×W×3 uint8 array.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"pixel_sha256 takes a uint8 H×W or H×W×3 image, got {array.dtype} {array.shape}")
    array = _grey_if_channels_equal(array)
    channels = 1 if array.ndim == 2 else 3
    digest = hashlib.sha256(f"{array.shape[0]}x{array.shape[1]}x{channels}\n".encode("ascii"))
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, checked without decoding its pixels.

    Raises :class:`ImageError` for whatever :func:`load_image` would refuse from
    the header (missing or unidentified file, 16-bit, alpha, other modes) or from
    PIL's ``verify`` (for PNG: a truncated file, a chunk whose CRC is wrong).  A
    file that passes can still fail to decode in :func:`load_image` (e.g. a JPEG
    cut short, which ``verify`` does not read).
    """
    path = Path(path)
    with _open_image(path) as img:
        _refuse_mode(path, img)
        size = img.size
        try:
            img.verify()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(path, f"unreadable or truncated image ({exc})") from None
    return size


#: The smallest side the metrics score (``metrics/_input.py``: "images must be at least 2x2"; every preset of
#: ``--metrics all`` gives a value, or NaN where undefined, on 2×2, and refuses 1×N and N×1).
MIN_SIDE = 2


def check_pair_files(a_path: str | Path, b_path: str | Path) -> None:
    """Raise :class:`ImageError` for a pair of files that :func:`load_image` + :func:`check_pair` would
    refuse, as far as :func:`image_size` can tell without decoding: either file unusable, or the two
    sizes differ (the message names ``b_path``, as :func:`check_pair` does), or too small to score
    (under :data:`MIN_SIDE` pixels a side; named once here rather than once per metric)."""
    (wa, ha), (wb, hb) = image_size(a_path), image_size(b_path)
    if (wa, ha) != (wb, hb):
        raise ImageError(b_path, f"size {wb}x{hb} differs from its partner {a_path} ({wa}x{ha})")
    check_min_side(a_path, wa, ha)


def check_min_side(path: str | Path, width: int, height: int) -> None:
    """:class:`ImageError` naming ``path`` for an image under :data:`MIN_SIDE` pixels a side: one line for the
    pair (the runner, ``fusionbench.fuse``, ``fusionbench score``), not one per metric or a method's error."""
    if min(width, height) < MIN_SIDE:
        raise ImageError(path, f"size {width}x{height} is too small to score (the metrics need at least "
                               f"{MIN_SIDE}x{MIN_SIDE})")


def check_pair(a: np.ndarray, b: np.ndarray, a_path: str | Path = "a", b_path: str | Path = "b", *,
               grey_a: bool = False) -> None:
    """Raise :class:`ImageError` if the two images of a pair differ in size.

    Colour is accepted on either side (the colour protocol puts the colour
    side's chroma back, :mod:`fusionbench.colour`).  ``grey_a=True`` is for
    callers that need a grey ``a`` (training on MRI inputs): a colour ``a`` is
    then refused, naming the file.
    """
    if a.shape[:2] != b.shape[:2]:
        raise ImageError(
            b_path, f"size {b.shape[1]}x{b.shape[0]} differs from its partner {a_path} ({a.shape[1]}x{a.shape[0]})"
        )
    if grey_a and a.ndim == 3:
        raise ImageError(a_path, "the anatomical/visible image must be grey here (it has colour channels)")


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Save a uint8 grey or RGB image as lossless PNG (atomically: write then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG")
