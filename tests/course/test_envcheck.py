from course_lib.course.envcheck import Check, check_data, check_device, _check_package, check_packages, report_lines


def test_installed_packages_pass():
    checks = check_packages()
    assert checks and all(c.ok for c in checks), [c.line() for c in checks if not c.ok]


def test_missing_and_old_packages_fail_with_advice():
    missing = _check_package("no-such-course-package", "1.0")
    assert not missing.ok and "make install" in missing.detail
    old = _check_package("numpy", "999.0")
    assert not old.ok and "older than 999.0" in old.detail


def test_device_check_never_fails_on_cpu():
    assert check_device().ok


def test_empty_cache_offline_reports_fail_lines(empty_cache):
    checks = check_data()
    assert [c.ok for c in checks] == [False, False]
    text = report_lines(checks)
    assert sum(line.startswith("FAIL") for line in text.splitlines()) == 2
    assert "2 requirement(s) not met" in text


def test_report_verdict_when_all_ok():
    assert "all requirements met" in report_lines([Check("x", True, "fine")])
