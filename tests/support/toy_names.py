"""What tests/support/toy_plugin.py registers, importable without registering it (importing the plugin in the test
process would leave its protocol and figure in the registries of every later test)."""

TOY_CAPTION = "Toy figure: how many layers each model has (drawn by the plugin of tests/support/toy_plugin.py)."
