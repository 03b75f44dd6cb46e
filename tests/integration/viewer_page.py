"""The thought viewer's page in headless Chromium (the distribution's ``chromium`` and
``chromedriver``, which config.sh installs), driven by Selenium: open it, fill its form,
read what it drew."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

BROWSERS = ("chromium", "chromium-browser")
WINDOW = (1500, 1150)


def visible(text: str) -> str:
    """What the page shows for a token's text: whitespace made visible."""
    if text == "":
        return "∅"
    return text.replace(" ", "·").replace("\n", "↵").replace("\t", "→").replace("\r", "␍")


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.fail("the browser test needs Chromium and its chromedriver: run ./config.sh "
                    "(it installs the distribution's chromium and chromium-driver)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


class ViewerPage:
    """The page at ``root`` in ``driver``."""

    def __init__(self, driver: webdriver.Chrome, root: str):
        self.driver, self.root = driver, root

    def open(self, api_key: str) -> None:
        """Load the page, give it the key, wait until its form is built from the schema."""
        self.driver.get(f"{self.root}/")
        self.set_key(api_key)
        self.wait(lambda _: self.driver.find_element(By.ID, "send").is_enabled(), 30)

    def set_key(self, api_key: str) -> None:
        key = self.driver.find_element(By.ID, "api-key")
        key.clear()
        key.send_keys(api_key)
        self.driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)

    def field(self, param: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-param="{param}"]')

    def fill(self, **values) -> None:
        """Type each value into the field the server names so (``__`` for ``.``)."""
        for name, value in values.items():
            element = self.field(name.replace("__", "."))
            if element.tag_name == "select":
                Select(element).select_by_value(str(value))
            else:
                element.clear()
                element.send_keys(str(value))

    def set_prompt(self, text: str) -> None:
        prompt = self.driver.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys(text)

    def send(self) -> None:
        self.driver.find_element(By.ID, "send").click()

    def stop(self) -> None:
        self.driver.find_element(By.ID, "stop").click()

    def run(self) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, "#live .run")

    def run_state(self) -> str | None:
        runs = self.driver.find_elements(By.CSS_SELECTOR, "#live .run")
        return runs[0].get_attribute("data-state") if runs else None

    def wait_state(self, *states: str, timeout: float = 120) -> str:
        self.wait(lambda _: self.run_state() in states, timeout)
        return self.run_state()

    def steps(self) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, "#live .grid .step")

    def text(self, selector: str) -> str:
        """An element's whole text content (what ``.text`` would trim or hide)."""
        return self.driver.execute_script(
            "return document.querySelector(arguments[0])?.textContent ?? null", selector)

    def error_on(self, param: str) -> str:
        return self.text(f'[data-error-for="{param}"]')

    def wait(self, condition, timeout: float):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)
