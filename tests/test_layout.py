"""The boundary holds: improv/ never imports TensorFlow, and imports training/ only inside
the functions of the commands that train or evaluate with it."""

from __future__ import annotations

import ast

from tests.conftest import REPO

TF = ("tensorflow", "keras")
#: The modules of improv/ that may import training/, and only inside a function.
LAZY_TRAINING = {"commands/train.py", "commands/evaluate.py", "commands/export.py", "bench.py"}


def imports(path):
    """(module imported, whether at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name, id(node) in top


def test_improv_never_imports_tensorflow_and_training_only_lazily_in_commands():
    wrong = []
    for path in sorted((REPO / "improv").rglob("*.py")):
        rel = path.relative_to(REPO / "improv").as_posix()
        for name, at_top in imports(path):
            root = name.split(".")[0]
            if root in TF:
                wrong.append(f"{rel} imports {name}")
            elif root == "training" and (at_top or rel not in LAZY_TRAINING):
                wrong.append(f"{rel} imports {name}" + (" at module level" if at_top else ""))
    assert not wrong


def test_training_is_what_imports_tensorflow():
    """Every training/ module needs TensorFlow, itself or through the modules it imports."""
    modules = {p.stem: p for p in (REPO / "training").glob("*.py") if p.stem != "__init__"}
    direct = {m for m, p in modules.items()
              if any(n.split(".")[0] in TF for n, _ in imports(p))}
    uses = {m: {n.split(".")[1] for n, _ in imports(p)
                if n.startswith("training.") and n.split(".")[1] in modules}
            for m, p in modules.items()}
    needs = set(direct)
    while True:
        more = {m for m, used in uses.items() if used & needs} - needs
        if not more:
            break
        needs |= more
    assert needs == set(modules), sorted(set(modules) - needs)


def test_every_flagged_train_config_field_is_a_train_flag():
    from dataclasses import fields

    from improv.cli import build_parser
    from improv.trainconfig import TrainConfig

    flagged = [f.name for f in fields(TrainConfig) if "flag" in f.metadata]
    assert len(flagged) == 20
    argv = ["train"] + [x for name in flagged if name != "arch"
                        for x in (f"--{name.replace('_', '-')}", "3")] + ["--arch", "tutorial"]
    args = build_parser().parse_args(argv)
    assert all(getattr(args, name) == 3 for name in flagged if name != "arch")
    assert args.arch == "tutorial"


def test_every_run_flag_lands_in_the_options():
    from improv.cli import build_parser
    from improv.commands.run import _run_options

    args = build_parser().parse_args(
        ["run", "--model", "m", "--input", "keys", "--channel", "3", "--mode", "continue",
         "--silence", "1.5", "--temperature", "0.5", "--top-k", "5", "--memory-file", "x.mem",
         "--no-barge-in", "--passthrough", "--no-status", "--gain", "2"])
    options = _run_options(args)
    assert (options.model, options.input, options.channel, options.status) == (
        "m", "keys", 3, False)
    assert (options.settings.mode, options.settings.silence, options.settings.memory_file,
            options.settings.barge_in, options.settings.passthrough) == (
        "continue", 1.5, "x.mem", False, True)
    assert (options.sampling.temperature, options.sampling.top_k) == (0.5, 5)
    assert options.synth_settings["synth.gain"] == 2
