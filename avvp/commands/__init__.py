"""Subcommands of the ``avvp`` CLI, one module each (registered in :data:`avvp.cli.COMMAND_MODULES`)."""
