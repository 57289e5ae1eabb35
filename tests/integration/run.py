"""Runs one integration test module for ctest: `python3 run.py MODULE`.

Exit status (python -m unittest exits 0 when tests skip, so ctest would
count a skip as a pass):
  0   every test ran and passed, or some passed and others skipped;
  77  nothing ran: every test skipped (ctest's SKIP_RETURN_CODE, set in
      tests/CMakeLists.txt, so ctest shows the module as skipped);
  1   a failure, an error, or no test at all.
Every skip, partial or whole, is written with its reason to
MS_SKIP_DIR/MODULE.txt (when MS_SKIP_DIR is set) for ./test.sh to list at
the end."""
import os
import sys
import unittest

SKIPPED_ALL = 77


def write_skips(module, result):
    skip_dir = os.environ.get("MS_SKIP_DIR")
    if not skip_dir or not result.skipped:
        return
    os.makedirs(skip_dir, exist_ok=True)
    with open(os.path.join(skip_dir, module + ".txt"), "w") as f:
        for test, reason in result.skipped:
            f.write("%s: %s\n" % (test.id(), reason))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: run.py MODULE")
    module = sys.argv[1]
    sys.path.insert(0, os.getcwd())  # as python -m unittest does
    suite = unittest.defaultTestLoader.loadTestsFromName(module)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    write_skips(module, result)
    # A class or module skipped in setUpClass is one skip entry that is no
    # TestCase and was never counted in testsRun.
    skipped_tests = sum(1 for t, _ in result.skipped
                        if isinstance(t, unittest.TestCase))
    ran = result.testsRun - skipped_tests
    if not result.wasSuccessful():
        return 1
    if ran == 0 and result.skipped:
        print("run.py: %s: every test skipped" % module)
        return SKIPPED_ALL
    if ran == 0:
        print("run.py: %s: no tests found" % module)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
