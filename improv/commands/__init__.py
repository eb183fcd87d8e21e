"""The ``improv`` command's subcommands, one module each (as mido's ``scripts/``).

Each module has ``add_parser(subparsers)`` and ``command(args) -> int``;
:data:`NAMES` lists them in the order ``improv --help`` shows them. A command that
needs TensorFlow (train, evaluate, export; bench engine's Keras row) imports
``training/`` inside its function, never at import.
"""

NAMES = ("run", "demo", "ports", "generate", "train", "evaluate", "plot", "export", "bench",
         "data", "memory")
