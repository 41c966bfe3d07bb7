"""The app tests/test_freeze.py freezes with a bare `pyinstaller app.py`.

Run frozen or not, it loads every variant of every embedded model (each load
verifies every file's sha256), classifies the texts given as JSON on stdin
and prints one JSON document on stdout: the predictions, where the bundles
were found, and which heavy modules got imported (none may be).
"""

import json
import sys

import edgeclf


def main() -> int:
    texts = json.load(sys.stdin)
    out = {"frozen": bool(getattr(sys, "frozen", False)), "models": {}}
    for name in edgeclf.list_models():
        for variant in edgeclf.load(name).manifest.variants:
            with edgeclf.load(name, variant=variant, providers="cpu") as clf:
                out["models"][f"{name}/{variant}"] = {
                    "location": str(clf.bundle.root),
                    "probabilities": clf.predict_proba(texts).tolist(),
                }
    heavy = ("torch", "tensorflow", "matplotlib", "transformers", "onnx", "edgeclf.export")
    out["heavy_modules"] = sorted(m for m in heavy if m in sys.modules)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
