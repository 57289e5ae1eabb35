"""The man pages in man/: each passes `mandoc -T lint` at warning level and
groff's `man --warnings`, documents every option its binary's --help
lists, and (for lbd.ini(5) and mailnode.ini(5)) every key of the example
config in etc/. Skips a linter that is not installed (mandoc is in
TEST_PACKAGES of scripts/install-deps.sh).

Run from tests/integration with MS_BIN=<build>/bin and MS_SRC=<source>:

    python3 -m unittest -v test_man
"""
import os
import re
import shutil
import subprocess
import unittest

from lbdtest import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MS_SRC", os.path.join(HERE, "..", ".."))
MAN = os.path.join(SRC, "man")
# page -> the binary whose --help it documents
PAGES = {"lbd.8": "lbd", "lbctl.8": "lbctl", "lbd-track.8": "lbd-track",
         "mailnode.8": "mailnode", "mailctl.8": "mailctl",
         "lbd.ini.5": None, "mailnode.ini.5": None}
CONFIGS = {"lbd.ini.5": "lbd.ini", "mailnode.ini.5": "mailnode.ini"}


def read(path):
    with open(path) as f:
        return f.read()


class TestManPages(unittest.TestCase):
    def test_every_page_is_there(self):
        self.assertEqual(sorted(f for f in os.listdir(MAN)
                                if re.search(r"\.[58]$", f)), sorted(PAGES))

    @unittest.skipUnless(shutil.which("mandoc"), "mandoc missing")
    def test_mandoc_lint(self):
        for page in PAGES:
            r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                                os.path.join(MAN, page)],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""),
                             page)

    @unittest.skipUnless(shutil.which("man") and shutil.which("groff"),
                         "man or groff missing")
    def test_man_warnings(self):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                   MANPAGER="cat", PAGER="cat")
        for page in PAGES:
            r = subprocess.run(["man", "--warnings", "-l",
                                os.path.join(MAN, page)], env=env,
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, page)
            self.assertEqual(r.stderr.strip(), "", page)
            self.assertIn("NAME", r.stdout, page)

    def test_pages_document_every_option_of_help(self):
        for page, binary in PAGES.items():
            if binary is None:
                continue
            text = read(os.path.join(MAN, page))
            usage = subprocess.run([os.path.join(BIN, binary), "--help"],
                                   capture_output=True, text=True,
                                   timeout=10).stdout
            flags = set(re.findall(r"(?m)^\s+(--?[A-Za-z][\w-]*)", usage))
            self.assertTrue(flags, binary)
            for flag in flags:
                mdoc = "Fl " + (flag[1:] if not flag.startswith("--")
                                else "\\-" + flag[2:])
                self.assertIn(mdoc, text, "%s: %s" % (page, flag))

    def test_config_pages_document_every_example_key(self):
        for page, conf in CONFIGS.items():
            text = read(os.path.join(MAN, page))
            keys = set(re.findall(r"(?m)^;?([a-z_]+) *=",
                                  read(os.path.join(SRC, "etc", conf))))
            self.assertGreater(len(keys), 10, conf)
            for key in keys:
                found = re.search(r"\.(It|Ic) .*\bIc %s\b" % key, text)
                self.assertTrue(found, "%s does not document %s" % (page, key))


if __name__ == "__main__":
    unittest.main()
