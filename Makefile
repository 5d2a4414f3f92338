# The two commands of the README. Each sets up .venv first (once; re-done when pyproject.toml, the set-up script or
# the constraints change): `demo` installs what the demo needs, `test` adds the test extras.
.PHONY: demo test

PYTEST = HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -p no:cacheprovider
# The tests marked @pytest.mark.slow (the default suite deselects them), run by name after it; tests/test_suite.py
# checks that this list names every slow test.
SLOW_TESTS = \
	tests/test_cli_signals.py::test_score_stops_on_a_signal_says_what_is_stored_and_resumes \
	tests/test_cli_signals.py::test_a_signal_during_the_imports_is_one_line \
	tests/test_e2e.py::test_quick_end_to_end \
	tests/test_eval_stages.py::test_lm_eval_bridge_on_a_local_task \
	tests/test_report.py::test_page_renders_in_headless_chromium_without_console_errors

demo:
	bash scripts/setup.sh demo
	HF_HUB_OFFLINE=1 .venv/bin/gateau demo

test:
	bash scripts/setup.sh test
	$(PYTEST)
	$(PYTEST) -m slow $(SLOW_TESTS)
