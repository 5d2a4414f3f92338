# The two commands of the README. Each sets up .venv first (once; re-done when pyproject.toml, the set-up script or
# the constraints change): `demo` installs what the demo needs, `test` adds the test extras.
.PHONY: demo test

PYTEST = HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -p no:cacheprovider
# The default suite runs on 2 workers (pytest-xdist; idle workers take queued tests from the busy one), one torch
# thread each (tests/conftest.py): the machine it is sized for has 2 cores.
# The tests marked @pytest.mark.slow (the default suite deselects them), run by name after it; tests/test_suite.py
# checks that this list names every slow test.
SLOW_TESTS = \
	tests/test_bad_input.py::test_ctrl_c_prints_one_line_exits_130_and_leaves_no_partial_file \
	tests/test_bench.py::test_bench_run_quick_end_to_end \
	tests/test_cascade.py::test_calibrated_cascade_runs_the_neutral_row_with_the_segments \
	tests/test_cli_signals.py::test_a_signal_during_the_imports_is_one_line \
	tests/test_cli_signals.py::test_score_stops_on_a_signal_says_what_is_stored_and_resumes \
	tests/test_config_files.py::test_train_from_a_file_gives_the_weights_and_loss_the_flags_give \
	tests/test_e2e.py::test_quick_end_to_end \
	tests/test_e2e.py::test_quick_end_to_end_one_arm_of_each_kind \
	tests/test_faults.py::test_a_select_killed_mid_write_leaves_a_temporary_the_next_write_removes \
	tests/test_faults.py::test_ctrl_c_during_report_is_one_line_and_writes_nothing \
	tests/test_eval_stages.py::test_lm_eval_bridge_on_a_local_task \
	tests/test_executors.py::test_a_killed_driver_loses_only_chunks_in_flight \
	tests/test_executors.py::test_a_killed_worker_is_restarted_and_every_sample_stored_once \
	tests/test_executors.py::test_a_run_started_with_one_executor_is_finished_by_the_other \
	tests/test_executors.py::test_ray_rows_equal_local_rows \
	tests/test_gpu_check.py::test_dry_run_on_cpu_with_tiny_shapes \
	tests/test_hub_options.py::test_score_passes_both_to_the_config_tokenizer_and_model_of_a_and_b \
	tests/test_hub_options.py::test_train_passes_both_to_the_base_model \
	tests/test_report.py::test_page_renders_in_headless_chromium_without_console_errors \
	tests/test_shard_executor.py::test_three_worker_processes_one_sigkilled_and_rerun \
	tests/test_slurm.py::test_array_job_and_finish_step_equal_a_local_run \
	tests/test_train_longce.py::test_trainer_longce_loss_equals_naive \
	tests/test_train_provenance.py::test_push_to_hub_uploads_the_folder_to_a_fake_endpoint \
	tests/test_train_run.py::test_kill_and_resume_reach_the_same_weights \
	tests/test_train_run.py::test_two_processes_give_the_one_process_loss_curve

demo:
	bash scripts/setup.sh demo
	HF_HUB_OFFLINE=1 .venv/bin/gateau demo

test:
	bash scripts/setup.sh test
	$(PYTEST) -n 2 --dist worksteal
	$(PYTEST) -m slow $(SLOW_TESTS)
