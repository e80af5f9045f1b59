"""Checks the tune benchmarks' command lines share (tune_compare.py, tune_optuna.py)."""

import os


def check_args(parser, args, counts):
    """Each option named in `counts` at least 1, and --nabla an executable file (made
    absolute); otherwise parser.error, which exits 2."""
    for name in counts:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not (os.path.isfile(args.nabla) and os.access(args.nabla, os.X_OK)):
        parser.error(f"--nabla {args.nabla}: not an executable file (build it with `make`)")
    args.nabla = os.path.abspath(args.nabla)
