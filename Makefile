# The two commands of the README. Each sets up .venv first (once; re-done when pyproject.toml, the set-up script or
# the constraints change): `demo` installs what the demo needs, `test` adds the test extras.
.PHONY: demo test

demo:
	bash scripts/setup.sh demo
	HF_HUB_OFFLINE=1 .venv/bin/gateau demo

test:
	bash scripts/setup.sh test
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -p no:cacheprovider
