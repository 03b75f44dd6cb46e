"""``GET /metrics``: the server's Prometheus metrics, in one registry per app.

Counted here: HTTP requests by route and status (:class:`RequestCounter`, an ASGI
middleware, so refusals such as 401 and 413 count too); prompt, completion and thinking
tokens, concept-token steps and Cold Stops of finished requests; latency histograms
per choice (end-to-end for every choice, time to first token and time per output token
for streamed ones: a non-streamed choice's first token is not visible to the server).
Running and queued requests are read from the engine's scheduler at scrape time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from server.engine import SOFT_THINKING_ERROR
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.results import ChoiceResult

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROUTES = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TOKEN_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4)


class ServerMetrics:
    """Every metric the server exports; ``render`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("softthink_requests", "HTTP requests by route and status code",
                                ["route", "status"], registry=r)
        self.prompt_tokens = Counter("softthink_prompt_tokens",
                                     "prompt tokens of finished requests", registry=r)
        self.completion_tokens = Counter("softthink_completion_tokens",
                                         "generated tokens of finished requests", registry=r)
        self.thinking_tokens = Counter(
            "softthink_thinking_tokens",
            "generated tokens before the answer (think-end string included), soft or plain",
            registry=r)
        self.concept_steps = Counter("softthink_concept_token_steps",
                                     "thinking steps of soft-thinking requests (any method)", registry=r)
        self.cold_stops = Counter("softthink_cold_stops",
                                  "choices whose thinking Cold Stop ended", registry=r)
        self.soft_thinking_errors = Counter(
            "softthink_soft_thinking_errors",
            "requests the engine aborted because their soft thinking could not be made right", registry=r)
        self.running = Gauge("softthink_running_requests",
                             "engine requests in the running batch", registry=r)
        self.queued = Gauge("softthink_queued_requests",
                            "engine requests waiting for a place in the batch", registry=r)
        self.in_flight = Gauge("softthink_in_flight_requests",
                               "engine requests the server is waiting on", registry=r)
        self.ttft = Histogram("softthink_time_to_first_token_seconds",
                              "streamed choices: request arrival to first output",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("softthink_time_per_output_token_seconds",
                              "streamed choices: (end-to-end - TTFT) / (tokens - 1)",
                              buckets=TOKEN_LATENCY_BUCKETS, registry=r)
        self.e2e = Histogram("softthink_e2e_request_latency_seconds",
                             "request arrival to a choice's last token",
                             buckets=LATENCY_BUCKETS, registry=r)

    def observe_choices(self, results: list[ChoiceResult], n: int) -> None:
        """Count a finished request; each prompt's tokens count once however many choices."""
        for result in results:
            if result.index % n == 0:
                self.prompt_tokens.inc(result.prompt_tokens)
            self.completion_tokens.inc(result.completion_tokens)
            self.thinking_tokens.inc(result.thinking_tokens or 0)
            if result.soft is not None:
                self.concept_steps.inc(result.concept_steps)
                if result.soft.end_reason == "cold_stop":
                    self.cold_stops.inc()
            if result.latency_s is not None:
                self.e2e.observe(result.latency_s)
            if result.first_token_s is not None:
                self.ttft.observe(result.first_token_s)
                if result.latency_s is not None and result.completion_tokens > 1:
                    self.tpot.observe((result.latency_s - result.first_token_s)
                                      / (result.completion_tokens - 1))

    def observe_error(self, error) -> None:
        """Count an error answered to a client (an APIError) that soft thinking caused."""
        if getattr(error, "code", None) == SOFT_THINKING_ERROR:
            self.soft_thinking_errors.inc()

    def set_load(self, running: int, queued: int, in_flight: int) -> None:
        self.running.set(running)
        self.queued.set(queued)
        self.in_flight.set(in_flight)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestCounter:
    """ASGI middleware counting every HTTP request by route and final status code.

    Paths outside :data:`ROUTES` count as ``other``, so unknown URLs cannot grow the
    number of series. An exception that escapes the app counts as 500.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.requests.labels(route=route, status=str(status)).inc()
