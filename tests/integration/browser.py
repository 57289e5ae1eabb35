"""A real browser for the web tests: Debian's headless Chromium, driven by
Debian's chromium-driver through Debian's python3-selenium (also found
when the tests run under another python3).

    with Browser(self.tmp) as b:
        b.get("http://127.0.0.1:PORT/")
        b.driver.find_element(b.By.ID, "user").send_keys("alice@example.test")
        b.wait_for(lambda d: "Inbox" in d.title, what="the inbox")
        b.screenshot("webmail.png")

Tests skip (unittest.SkipTest) when the packages are missing; ./test.sh
installs them."""
import os
import shutil
import sys
import time
import unittest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def import_selenium():
    try:
        import selenium  # noqa: F401
    except ImportError:
        if "/usr/lib/python3/dist-packages" not in sys.path:
            sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import selenium  # noqa: F401
        except ImportError:
            raise unittest.SkipTest("python3-selenium is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    return webdriver, Service, By, Keys


class Browser:
    """One headless Chromium with its own profile under TMP."""

    def __init__(self, tmp, width=1280, height=900):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest("%s is missing (packages chromium, "
                                        "chromium-driver)" % path)
        webdriver, Service, self.By, self.Keys = import_selenium()
        self.profile = os.path.join(tmp, "chromium-profile")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-sync",
                    "--disable-extensions", "--disable-default-apps",
                    "--window-size=%d,%d" % (width, height),
                    "--user-data-dir=" + self.profile):
            opts.add_argument(arg)
        # Console messages and network requests are read by the tests.
        opts.set_capability("goog:loggingPrefs",
                            {"browser": "ALL", "performance": "ALL"})
        self.log_path = os.path.join(tmp, "chromedriver.log")
        service = Service(executable_path=CHROMEDRIVER,
                          log_path=self.log_path)
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(20)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.driver is not None:
            try:
                self.driver.quit()
            finally:
                self.driver = None
                shutil.rmtree(self.profile, ignore_errors=True)

    def get(self, url):
        self.driver.get(url)

    def wait_for(self, cond, timeout=10, what="condition"):
        """Polls cond(driver) until it is true; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = cond(self.driver)
                if value:
                    return value
            except Exception as e:  # element not there yet, stale, ...
                last = e
            time.sleep(0.05)
        raise AssertionError("timed out after %s s waiting for %s (last "
                             "error: %r)" % (timeout, what, last))

    def console(self):
        """The browser console's messages since the last call."""
        return self.driver.get_log("browser")

    def requests(self):
        """URLs (other than the browser's own chrome:// pages) the page
        asked the network for since the last call."""
        import json
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                url = msg["params"]["request"]["url"]
                if not url.startswith("chrome://"):
                    urls.append(url)
        return urls

    def screenshot(self, path):
        self.driver.save_screenshot(path)
        return path
