"""The README's code examples name only public API that exists, and parse."""

import ast
import inspect
import pathlib
import re

import jaxae

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _dotted(node: ast.AST) -> str | None:
    """``"a.b"`` for the expression ``jaxae.a.b``; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "jaxae" and parts:
        return ".".join(reversed(parts))
    return None


def _jaxae_attributes(tree: ast.AST) -> set[str]:
    """Dotted names ``jaxae.a.b`` used in the code, as ``"a.b"`` (and ``"a"``)."""
    return {name for node in ast.walk(tree) if (name := _dotted(node))}


def _resolve(dotted: str):
    obj = jaxae
    for part in dotted.split("."):
        assert hasattr(obj, part), f"README uses jaxae.{dotted}, which does not exist"
        obj = getattr(obj, part)
    return obj


def test_readme_calls_match_the_signatures():
    """Every ``jaxae.f(...)`` call in the README binds to ``f``'s signature."""
    calls = 0
    for block in _python_blocks():
        for node in ast.walk(ast.parse(block)):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = _dotted(node.func)
            if name is None:
                continue
            signature = inspect.signature(_resolve(name))
            positional = [None] * len(node.args)
            keywords = {k.arg: None for k in node.keywords}
            try:
                signature.bind(*positional, **keywords)
            except TypeError as error:
                raise AssertionError(f"README call jaxae.{name}(...): {error}") from None
            calls += 1
    assert calls >= 5


def test_readme_examples_parse_and_use_existing_public_names():
    blocks = _python_blocks()
    assert len(blocks) >= 2
    used = set()
    for block in blocks:
        used |= _jaxae_attributes(ast.parse(block))
    assert {"MLPAutoencoder", "fit", "pretrain_rbm_stack", "unroll", "LinenAutoencoder"} <= used
    for dotted in sorted(used):
        _resolve(dotted)
        head = dotted.split(".")[0]
        assert head in jaxae.__all__, f"jaxae.{head} is not in __all__"


def test_readme_flax_module_example_trains_as_written(tmp_path, monkeypatch):
    """The "your own Flax module" block runs, on 256 MNIST images for one epoch."""
    (block,) = [b for b in _python_blocks() if "LinenAutoencoder" in b]
    small = block.replace(".images  #", ".images[:256]  #").replace("epochs=5", "epochs=1")
    assert small.count("[:256]") == 1 and "epochs=1" in small
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec("import jax\nimport optax\nimport jaxae\n" + small, namespace)
    assert namespace["codes"].shape == (10, 16)
    assert namespace["result"].model_state["batch_stats"]
    assert (tmp_path / "train.csv").read_text().startswith("epoch")
