"""A plugin entry point that fails to import: fusionbench must report it and go on."""
raise ImportError("this plugin is deliberately broken")
