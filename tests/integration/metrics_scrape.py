"""Read a server's ``/metrics`` with prometheus_client's own parser (not the server's code)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    """One scrape: every sample as ``(name, sorted label items) -> value``."""

    samples: dict[tuple[str, tuple], float]

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; a series not exported yet counts as 0."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(server) -> Scrape:
    root = server.base_url.removesuffix("/v1")
    response = httpx.get(f"{root}/metrics", timeout=30,
                         headers={"Authorization": f"Bearer {server.api_key}"})
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Scrape(samples)
