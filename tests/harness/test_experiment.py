import hashlib
from pathlib import Path

import pytest
import yaml

from harness.distributions import Fixed, Lognormal
from harness.experiment import (
    CallStep,
    Experiment,
    ExperimentError,
    FaultTarget,
    LoadSpec,
    ParallelStep,
    RequestSpec,
    SleepStep,
    Stage,
    load_experiment,
    parse_experiment,
    with_overrides,
)
from meshcore.config import DestinationPolicy
from meshcore.policy.authz import AuthorizationRule
from meshcore.policy.faults import AbortFault, DelayFault, FaultRule

# DESIGN.md 4.2, with a shorter destination block (the full one is in
# test_the_design_destination_fields_load).
DESIGN_EXAMPLE = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata:
  name: payments-brownout
  description: Checkout keeps its p99 while payments slows down
spec:
  seed: 42
  warmup: 5s
  duration: 60s
  services:
    - name: frontend
      replicas: 2
      script:
        - sleep: 2ms
        - call: checkout
      errorRate: 0.1%
      responseSize: 512B
    - name: checkout
      replicas: 3
      script:
        - sleep: {distribution: lognormal, median: 5ms, p99: 40ms}
        - - call: payments
          - call: inventory
    - name: payments
      replicas: 2
      script: [{sleep: 20ms}]
    - name: inventory
      script: [{sleep: 3ms}]
  mesh:
    mtls: STRICT
    destinations:
      payments:
        loadBalancer: {simple: LEAST_REQUEST}
    authorization:
      - {destination: payments, action: ALLOW, from: [checkout]}
  load:
    target: frontend
    requests: [{path: /, weight: 1}]
    rate: 200/s
    arrival: constant
    connections: 64
  faults:
    - name: payments-slow
      target: payments
      start: 20s
      duration: 15s
      delay: {fixed: 200ms, jitter: 50ms, percent: 50}
    - {target: payments/1, start: 30s, duration: 10s, abort: {httpStatus: 503, percent: 100}}
    - {target: inventory/0, start: 25s, duration: 10s, kill: {}}
    - {target: checkout->inventory, start: 40s, duration: 5s, partition: {}}
    - {target: payments, start: 45s, duration: 5s, toxic: {type: bandwidth, rate: 10KB/s}}
  slos:
    - {name: checkout p99 under fault, objective: "p99 < 250ms", where: {phase: fault}}
    - {objective: "error_rate < 0.5%"}
    - {objective: "availability >= 99.5%", where: {phase: all}}
    - {objective: "retry_amplification <= 1.2", where: {edge: checkout->payments}}
    - {objective: "recovery_time < 10s"}
"""

# Line numbers matter below: tests edit this text and assert FILE:LINE:COL.
BASE = """\
apiVersion: meshchaos/v1
kind: Experiment
metadata:
  name: tiny
spec:
  duration: 10s
  services:
    - name: frontend
      script:
        - sleep: 2ms
        - call: backend
    - name: backend
      replicas: 2
      script: [{sleep: 5ms}]
  load: {target: frontend, rate: 10/s}
"""


def parse(text: str) -> Experiment:
    return parse_experiment(text, "exp.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        parse(text)
    return [str(d) for d in caught.value.diagnostics]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text
    return text.replace(old, new, 1)


def with_lines(*lines: str) -> str:
    """BASE with lines appended under spec (each already indented)."""
    return BASE + "".join(line + "\n" for line in lines)


# --- valid files ------------------------------------------------------------------------------


def test_design_example_loads() -> None:
    exp = parse(DESIGN_EXAMPLE)
    assert (exp.name, exp.seed, exp.warmup_s, exp.duration_s) == ("payments-brownout", 42, 5, 60)
    assert exp.description == "Checkout keeps its p99 while payments slows down"
    assert exp.mode is None
    assert exp.warnings == ()
    frontend = exp.service("frontend")
    assert frontend.replicas == 2
    assert frontend.script == (SleepStep(Fixed(0.002)), CallStep("checkout"))
    assert frontend.error_rate == pytest.approx(0.001)
    assert frontend.response_size_bytes == 512
    assert exp.service("checkout").script == (
        SleepStep(Lognormal(0.005, 0.040)),
        ParallelStep((CallStep("payments"), CallStep("inventory"))),
    )
    assert exp.service("inventory").replicas == 1
    assert exp.mesh.mtls == "STRICT"
    assert exp.mesh.destinations == {"payments": DestinationPolicy("LEAST_REQUEST")}
    assert [(r.destination, r.rule) for r in exp.mesh.authorization] == [
        (
            "payments",
            AuthorizationRule(
                "ALLOW", "spec.mesh.authorization[0]", ("cluster.local/ns/default/sa/checkout",)
            ),
        )
    ]
    assert exp.load == LoadSpec(
        target="frontend",
        requests=(RequestSpec("/", "GET", 1.0),),
        stages=(Stage(65.0, 200.0),),
        start_rate_per_s=200.0,
    )


def test_design_example_faults() -> None:
    exp = parse(DESIGN_EXAMPLE)
    assert [(f.name, str(f.target), f.kind, f.start_s, f.duration_s) for f in exp.faults] == [
        ("payments-slow", "payments", "delay", 20, 15),
        ("abort-payments-1", "payments/1", "abort", 30, 10),
        ("kill-inventory-0", "inventory/0", "kill", 25, 10),
        ("partition-checkout--inventory", "checkout->inventory", "partition", 40, 5),
        ("toxic-payments", "payments", "toxic", 45, 5),
    ]
    slow, abort, kill, _, toxic = exp.faults
    assert slow.rule == FaultRule("payments-slow", delay=DelayFault(0.2, 0.05, 0.5))
    assert abort.rule == FaultRule("abort-payments-1", abort=AbortFault(503, 1.0))
    assert kill.rule is None
    assert kill.fields == {"target": "inventory/0", "start": "25s", "duration": "10s", "kill": {}}
    assert toxic.fields["toxic"] == {"type": "bandwidth", "rate": "10KB/s"}


def test_design_example_slos_are_named_after_their_objective() -> None:
    exp = parse(DESIGN_EXAMPLE)
    assert [(s.name, s.where) for s in exp.slos] == [
        ("checkout p99 under fault", {"phase": "fault"}),
        ("error_rate < 0.5%", {}),
        ("availability >= 99.5%", {"phase": "all"}),
        ("retry_amplification <= 1.2 (edge=checkout->payments)", {"edge": "checkout->payments"}),
        ("recovery_time < 10s", {}),
    ]
    assert {s.severity for s in exp.slos} == {"error"}


def test_the_design_destination_fields_load() -> None:
    text = edit(
        "        loadBalancer: {simple: LEAST_REQUEST}\n",
        "        timeout: 1s\n"
        "        retries: {attempts: 3, perTryTimeout: 200ms,\n"
        "                  retryOn: '5xx,reset,connect-failure',\n"
        "                  budget: {percent: 20, minRetryConcurrency: 3}}\n"
        "        connectionPool:\n"
        "          tcp: {maxConnections: 64}\n"
        "          http: {http1MaxPendingRequests: 32, http2MaxRequests: 128, maxRetries: 8}\n"
        "        outlierDetection:\n"
        "          {consecutive5xxErrors: 5, interval: 5s, maxEjectionPercent: 50}\n"
        "        loadBalancer: {simple: PEAK_EWMA}\n",
        DESIGN_EXAMPLE,
    )
    policy = parse(text).mesh.destination("payments")
    assert policy.timeout_s == 1.0
    assert (policy.retries.attempts, policy.retries.per_try_timeout_s) == (3, 0.2)
    assert policy.retries.retry_on == {"5xx", "reset", "connect-failure"}
    assert policy.connection_pool.max_connections == 64
    assert policy.outlier_detection is not None
    assert policy.outlier_detection.max_ejection_percent == 50
    assert policy.load_balancer == "PEAK_EWMA"


def test_a_retried_post_is_warned_about() -> None:
    text = edit("        - call: backend", "        - call: {service: backend, method: POST}")
    assert [str(w) for w in parse(text).warnings] == [
        "exp.yaml:11:44: warning: method: frontend calls backend with POST, and the retry "
        "policy of backend "
        "(Istio's default, 2 retries on cancelled,connect-failure,refused-stream,"
        "retriable-status-codes,unavailable (503)) may run it twice; if it is not idempotent, "
        "set retries: {attempts: 0} on backend (istio#13851)"
    ]
    quiet = edit(
        "  load:", "  mesh: {destinations: {backend: {retries: {attempts: 0}}}}\n  load:", text
    )
    assert parse(quiet).warnings == ()


def test_defaults() -> None:
    exp = parse(BASE)
    assert (exp.seed, exp.warmup_s, exp.mode, exp.description) == (1, 0.0, None, "")
    assert exp.load.requests == (RequestSpec(),)
    assert (exp.load.arrival, exp.load.connections) == ("constant", 64)
    assert exp.mesh.mtls == "PERMISSIVE"
    assert exp.faults == ()
    assert exp.slos == ()
    assert exp.sha256 == hashlib.sha256(BASE.encode()).hexdigest()
    assert exp.source == "exp.yaml"


def test_document_holds_the_seed_and_the_defaults() -> None:
    document = parse(BASE).document
    spec = document["spec"]
    assert isinstance(spec, dict)
    assert spec["seed"] == 1
    assert spec["warmup"] == "0s"
    assert spec["mesh"] == {"mtls": "PERMISSIVE"}
    assert spec["load"] == {
        "target": "frontend",
        "rate": "10/s",
        "requests": [{"path": "/"}],
        "arrival": "constant",
        "connections": 64,
    }
    assert [s["replicas"] for s in spec["services"]] == [1, 2]


def test_document_reads_back_as_the_same_experiment() -> None:
    first = parse(DESIGN_EXAMPLE)
    again = parse(yaml.safe_dump(dict(first.document), sort_keys=False))
    for name in ("name", "seed", "warmup_s", "duration_s", "services", "mesh", "load", "slos"):
        assert getattr(again, name) == getattr(first, name)
    assert [(f.name, f.rule) for f in again.faults] == [(f.name, f.rule) for f in first.faults]
    assert again.document == first.document


def test_document_puts_resolved_names_first() -> None:
    spec = parse(DESIGN_EXAMPLE).document["spec"]
    assert isinstance(spec, dict)
    assert list(spec["faults"][1]) == ["name", "target", "start", "duration", "abort"]
    assert spec["slos"][1] == {"name": "error_rate < 0.5%", "objective": "error_rate < 0.5%"}


def test_load_experiment_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(BASE, encoding="utf-8")
    exp = load_experiment(path)
    assert exp.source == str(path)
    assert exp.sha256 == hashlib.sha256(BASE.encode()).hexdigest()


def test_load_experiment_reports_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(edit("kind: Experiment", "kind: Experimnet"), encoding="utf-8")
    with pytest.raises(ExperimentError) as caught:
        load_experiment(path)
    assert str(caught.value) == f"{path}:2:7: kind: expected Experiment, got 'Experimnet'"


def test_mode_and_call_options() -> None:
    text = edit("  duration: 10s", "  duration: 10s\n  mode: simulate")
    text = edit(
        "        - call: backend",
        "        - call: {service: backend, path: /pay, method: POST, size: 1KiB, onError: ignore}",
        text,
    )
    exp = parse(text)
    assert exp.mode == "simulate"
    assert exp.service("frontend").calls() == (CallStep("backend", "/pay", "POST", 1024, "ignore"),)


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = edit(
        "    - name: backend\n      replicas: 2\n",
        "    - &backend\n      name: backend\n      replicas: 2\n",
    )
    text = edit("  load:", "    - {<<: *backend, name: store}\n  load:", text)
    store = parse(text).service("store")
    assert (store.replicas, store.script) == (2, (SleepStep(Fixed(0.005)),))


def test_unknown_field_at_the_top_of_spec() -> None:
    assert errors(edit("  load:", "  x-notes: 1\n  load:")) == [
        "exp.yaml:15:3: unknown field 'x-notes'; known fields: "
        "duration, faults, load, mesh, mode, network, seed, services, slos, warmup"
    ]


# --- load stages --------------------------------------------------------------------------------


def test_a_plain_rate_is_constant_over_warmup_and_duration() -> None:
    load = parse(edit("  duration: 10s", "  duration: 10s\n  warmup: 2s")).load
    assert load.stages == (Stage(12.0, 10.0),)
    assert [load.rate_at(t) for t in (0, 5, 11.99, 12, -1)] == [10, 10, 10, 0, 0]


def test_stages_ramp_linearly_from_the_previous_rate() -> None:
    text = edit(
        "  load: {target: frontend, rate: 10/s}",
        "  load:\n"
        "    target: frontend\n"
        "    startRate: 100/s\n"
        "    stages: [{duration: 4s, rate: 300/s}, {duration: 0s, rate: 50/s},"
        " {duration: 6s, rate: 50/s}]",
    )
    exp = parse(text)
    load = exp.load
    assert load.start_rate_per_s == 100
    assert load.duration_s == 10
    assert load.rate_at(0) == 100
    assert load.rate_at(2) == 200
    assert load.rate_at(4) == 50  # the 0s stage jumps
    assert load.rate_at(9.5) == 50
    assert load.rate_at(10) == 0
    assert exp.warnings == ()


def test_stages_default_to_starting_from_zero_and_warn_when_short() -> None:
    exp = parse(
        edit(
            "  load: {target: frontend, rate: 10/s}",
            "  load: {target: frontend, stages: [{duration: 4s, rate: 40/s}]}",
        )
    )
    assert exp.load.rate_at(1) == 10
    assert exp.warnings == (
        "exp.yaml:15:28: warning: stages: the stages end at 4s, before the run "
        "(warmup + duration) at 10s: no load after 4s",
    )


def test_rate_and_stages_exclude_each_other() -> None:
    text = edit(
        "rate: 10/s}",
        "rate: 10/s, stages: [{duration: 10s, rate: 1/s}]}",
    )
    assert errors(text) == ["exp.yaml:15:40: stages: give either rate or stages, not both"]


# --- fault targets and overrides ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("payments", FaultTarget("payments")),
        ("payments/1", FaultTarget("payments", replica=1)),
        ("checkout->payments", FaultTarget("payments", source="checkout")),
    ],
)
def test_fault_targets_parse_and_print_back(text: str, target: FaultTarget) -> None:
    assert FaultTarget.parse(text) == target
    assert str(target) == text


@pytest.mark.parametrize("text", ["", "Payments", "payments/x", "a->b->c", "a->", 3])
def test_malformed_fault_targets_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="expected payments, payments/1 or checkout->payments"):
        FaultTarget.parse(text)


def test_an_edge_target_takes_no_replica() -> None:
    with pytest.raises(ValueError, match="write a->b, without /1"):
        FaultTarget.parse("a->b/1")


def test_with_overrides_updates_fields_and_document() -> None:
    exp = parse(DESIGN_EXAMPLE)
    changed = with_overrides(exp, seed=7, mode="real", duration_s=55.0, warmup_s=1.0)
    assert (changed.seed, changed.mode, changed.duration_s, changed.warmup_s) == (7, "real", 55, 1)
    assert changed.load.stages == (Stage(56.0, 200.0),)
    spec = changed.document["spec"]
    assert isinstance(spec, dict)
    assert (spec["seed"], spec["mode"], spec["duration"], spec["warmup"]) == (
        7,
        "real",
        "55s",
        "1s",
    )
    assert changed.sha256 == exp.sha256
    assert exp.seed == 42  # the original is untouched


def test_with_overrides_checks_the_result_against_the_file_positions() -> None:
    exp = parse(DESIGN_EXAMPLE)
    with pytest.raises(ExperimentError) as caught:
        with_overrides(exp, duration_s=42.0)
    assert [str(d) for d in caught.value.diagnostics] == [
        "exp.yaml:50:59: warning: duration: the fault would last until 45s, past the end of "
        "the measurement (42s); it ends there",
        "exp.yaml:51:33: start: the fault starts at 45s, at or after the end of the "
        "measurement (42s): it would never act",
        "exp.yaml:57:19: objective: recovery_time needs every fault to end before the "
        "measurement does",
    ]


# --- invalid files: exact positions --------------------------------------------------------------


def test_unknown_field_is_shown_at_its_key_with_a_suggestion() -> None:
    assert errors(edit("      replicas: 2", "      replica: 2")) == [
        "exp.yaml:13:7: unknown field 'replica' (did you mean 'replicas'?); known fields: "
        "app, command, errorRate, labels, name, port, replicas, responseSize, script",
    ]


def test_bad_unit_is_shown_at_the_value() -> None:
    assert errors(edit("sleep: 2ms", "sleep: 2")) == [
        "exp.yaml:10:18: sleep: expected a duration with a unit such as 250ms, 1.5s or 2m, got 2",
    ]


def test_unknown_service_in_a_call() -> None:
    assert errors(edit("call: backend", "call: bakend")) == [
        "exp.yaml:11:17: call: unknown service 'bakend' (did you mean 'backend'?); "
        "services: frontend, backend",
    ]


def test_unknown_service_in_a_call_mapping_is_shown_at_the_service() -> None:
    assert errors(edit("call: backend", "call: {service: payments}")) == [
        "exp.yaml:11:27: service: unknown service 'payments'; services: frontend, backend",
    ]


def test_a_call_cycle_is_named() -> None:
    text = edit("script: [{sleep: 5ms}]", "script: [{sleep: 5ms}, {call: frontend}]")
    assert errors(text) == [
        "exp.yaml:14:37: call: the calls form a cycle, frontend -> backend -> frontend: "
        "a request would never finish",
    ]


def test_a_service_calling_itself_is_a_cycle() -> None:
    text = edit("script: [{sleep: 5ms}]", "script: [{call: backend}]")
    assert errors(text) == [
        "exp.yaml:14:23: call: the calls form a cycle, backend -> backend: "
        "a request would never finish",
    ]


def test_bad_replica_index() -> None:
    text = with_lines("  faults:", "    - {target: backend/2, start: 1s, kill: {}}")
    assert errors(text) == [
        "exp.yaml:17:16: target: there is no replica backend/2: backend has 2 replicas, "
        "numbered from 0",
    ]


def test_yaml_syntax_error() -> None:
    assert errors(edit("  name: tiny", "  name: [tiny")) == [
        "exp.yaml:5:5: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at 4:9)",
    ]


def test_yaml_duplicate_key() -> None:
    assert errors(edit("      replicas: 2", "      replicas: 2\n      replicas: 3")) == [
        "exp.yaml:14:7: duplicate key 'replicas' (first at line 13)",
    ]


def test_several_problems_are_reported_at_once_in_file_order() -> None:
    text = edit("apiVersion: meshchaos/v1", "apiVersion: meshchaos/v2")
    text = edit("  name: tiny", "  name: Tiny", text)
    text = edit("call: backend", "call: bakend", text)
    text = edit("      replicas: 2", "      replicas: two", text)
    text = edit("rate: 10/s", "rate: 10", text)
    assert errors(text) == [
        "exp.yaml:1:13: apiVersion: expected meshchaos/v1, got 'meshchaos/v2'",
        "exp.yaml:4:9: name: expected lowercase letters, digits and '-' ([a-z0-9-]+), got 'Tiny'",
        "exp.yaml:11:17: call: unknown service 'bakend' (did you mean 'backend'?); "
        "services: frontend, backend",
        "exp.yaml:13:17: replicas: expected a whole number, got 'two'",
    ]


def test_a_missing_field_is_shown_at_the_enclosing_key() -> None:
    assert errors(edit("  duration: 10s\n", "")) == [
        "exp.yaml:5:1: duration: required field is missing",
    ]


def test_an_empty_file() -> None:
    assert errors("# nothing yet\n") == [
        "exp.yaml:1:1: the file is empty; it starts with apiVersion: meshchaos/v1",
    ]


def test_a_top_that_is_not_a_mapping() -> None:
    assert errors("- a\n- b\n") == [
        "exp.yaml:1:1: expected a mapping (apiVersion: meshchaos/v1, ...), got a list"
    ]


def test_loadgen_is_a_reserved_service_name() -> None:
    assert errors(
        edit("- name: backend", "- name: loadgen", edit("call: backend", "sleep: 1ms"))
    ) == [
        "exp.yaml:12:13: name: 'loadgen' is the load generator's workload name; choose another",
    ]


def test_a_second_service_with_the_same_name() -> None:
    assert errors(edit("- name: backend", "- name: frontend")) == [
        "exp.yaml:11:17: call: unknown service 'backend'; services: frontend",
        "exp.yaml:12:13: name: a second service called 'frontend'",
    ]


def test_steps_are_sleep_or_call() -> None:
    text = edit("        - sleep: 2ms", "        - {sleep: 2ms, call: backend}\n        - 3")
    assert errors(text) == [
        "exp.yaml:10:11: a step is either sleep or call; write them as two steps",
        "exp.yaml:11:11: expected a step (sleep: or call:) or a list of steps, got 3",
    ]


def test_a_concurrent_group_cannot_nest_lists() -> None:
    text = edit("        - call: backend", "        - - call: backend\n          - [{sleep: 1ms}]")
    assert errors(text) == ["exp.yaml:12:13: a concurrent group cannot hold another list"]


def test_load_target_must_be_a_service() -> None:
    assert errors(edit("target: frontend", "target: frontdoor")) == [
        "exp.yaml:15:18: target: unknown service 'frontdoor' (did you mean 'frontend'?); "
        "services: frontend, backend",
    ]


def test_destinations_and_authorization_name_services() -> None:
    text = with_lines(
        "  mesh:",
        "    mtls: DISABLE",
        "    destinations:",
        "      backnd: {loadBalancer: {simple: RANDOM}}",
        "    authorization:",
        "      - {destination: backend, from: [frontend, loadgen, spiffe://x/y, batch]}",
    )
    assert errors(text) == [
        "exp.yaml:19:7: backnd: unknown service 'backnd' (did you mean 'backend'?); "
        "services: frontend, backend",
        "exp.yaml:20:5: warning: authorization: rules with `from` match the caller's mTLS "
        "identity, and with mtls: DISABLE no caller has one",
        "exp.yaml:21:72: from: unknown service 'batch'; services: frontend, backend, loadgen",
    ]


# --- faults -----------------------------------------------------------------------------------


def faults(*lines: str) -> str:
    return with_lines("  faults:", *(f"    - {line}" for line in lines))


def test_fault_starting_at_or_after_the_end_is_an_error() -> None:
    assert errors(faults("{target: backend, start: 10s, delay: {fixed: 1s}}")) == [
        "exp.yaml:17:32: start: the fault starts at 10s, at or after the end of the "
        "measurement (10s): it would never act",
    ]


def test_fault_running_past_the_end_is_a_warning() -> None:
    exp = parse(faults("{target: backend, start: 8s, duration: 5s, abort: {httpStatus: 503}}"))
    assert exp.warnings == (
        "exp.yaml:17:46: warning: duration: the fault would last until 13s, past the end of "
        "the measurement (10s); it ends there",
    )
    assert exp.faults[0].rule == FaultRule("abort-backend", abort=AbortFault(503))


def test_edge_faults_act_for_their_destination_and_read_level() -> None:
    exp = parse(faults("{target: frontend->backend, delay: {fixed: 1s}, level: request}"))
    (fault,) = exp.faults
    assert fault.name == "delay-frontend--backend"
    assert fault.rule == FaultRule(
        "delay-frontend--backend", delay=DelayFault(1.0), destination="backend", level="request"
    )
    assert (fault.start_s, fault.duration_s) == (0.0, None)


def test_delay_and_abort_together_make_one_fault() -> None:
    exp = parse(faults("{target: backend, delay: {fixed: 1s}, abort: {httpStatus: 500}}"))
    assert [(f.name, f.kind) for f in exp.faults] == [("delay-abort-backend", "delay+abort")]


def test_default_fault_names_are_unique() -> None:
    exp = parse(
        faults(
            "{target: backend, kill: {}}",
            "{target: backend, kill: {}}",
            "{name: kill-backend-3, target: backend, pause: {}}",
            "{target: backend, kill: {}}",
        )
    )
    assert [f.name for f in exp.faults] == [
        "kill-backend",
        "kill-backend-2",
        "kill-backend-3",
        "kill-backend-4",
    ]


def test_one_kind_per_fault() -> None:
    assert errors(faults("{target: backend, delay: {fixed: 1s}, kill: {}}")) == [
        "exp.yaml:17:45: kill: a fault has one kind, and this one has delay and kill: "
        "write one fault per kind",
    ]


def test_a_fault_needs_a_kind() -> None:
    assert errors(faults("{target: backend, start: 1s}")) == [
        "exp.yaml:17:7: a fault needs one of delay, abort, kill, pause, partition, toxic, "
        "certExpired, wrongIdentity, untrustedCa",
    ]


def test_kill_and_pause_need_a_service_or_replica() -> None:
    assert errors(faults("{target: frontend->backend, pause: {}}")) == [
        "exp.yaml:17:16: target: pause acts on a service or one replica, not on an edge; "
        "use partition or toxic for frontend->backend",
    ]


def test_process_faults_take_no_fields_and_no_level() -> None:
    assert errors(faults("{target: backend, level: request, kill: {signal: 9}}")) == [
        "exp.yaml:17:32: level: applies only to delay and abort faults",
        "exp.yaml:17:48: unknown field 'signal': kill takes none; write kill: {}",
    ]


def test_toxic_fields_are_checked_by_type() -> None:
    text = faults(
        "{target: backend, toxic: {type: bandwidth, rate: 10KB}}",
        "{target: backend, toxic: {type: latency, latency: 50ms, jitter: 5ms, percent: 50}}",
        "{target: backend, toxic: {type: slicer, delay: 1ms}}",
        "{target: backend, toxic: {type: lag, latency: 1s}}",
    )
    assert errors(text) == [
        "exp.yaml:17:56: rate: expected a bandwidth such as 10KB/s, got '10KB'",
        "exp.yaml:19:25: averageSize: required field is missing",
        "exp.yaml:20:39: type: expected one of latency, bandwidth, slow_close, timeout, "
        "reset_peer, slicer, limit_data, got 'lag'",
    ]


def test_fault_on_an_edge_without_traffic_is_a_warning() -> None:
    exp = parse(faults("{target: backend->frontend, partition: {}}"))
    assert exp.warnings == (
        "exp.yaml:17:16: warning: target: backend never calls frontend: this fault will not act",
    )


def test_fault_target_names_services() -> None:
    assert errors(faults("{target: frontend->db, abort: {httpStatus: 503}}")) == [
        "exp.yaml:17:16: target: unknown service 'db'; services: frontend, backend",
    ]


def test_a_mesh_fault_needs_its_fields() -> None:
    assert errors(faults("{target: backend, delay: {percent: 10}}")) == [
        "exp.yaml:17:25: fixed: required field is missing",
    ]


# --- SLOs -------------------------------------------------------------------------------------


def slos(*lines: str) -> str:
    return with_lines("  slos:", *(f"    - {line}" for line in lines))


def test_slo_objectives_are_checked_by_the_slo_language() -> None:
    (message,) = errors(slos('{objective: "p99 < 250"}'))
    assert message.startswith("exp.yaml:17:19: objective: ")


def test_slo_where_and_severity() -> None:
    exp = parse(
        slos(
            '{objective: "p99 < 60ms", where: {phase: baseline}}',
            '{objective: "p99 < 60ms", where: {phase: fault, service: backend}, severity: warn}',
            '{objective: "p99 < 60ms", where: {edge: loadgen->frontend}}',
        )
    )
    assert [(s.name, s.where, s.severity) for s in exp.slos] == [
        ("p99 < 60ms (phase=baseline)", {"phase": "baseline"}, "error"),
        (
            "p99 < 60ms (phase=fault,service=backend)",
            {"phase": "fault", "service": "backend"},
            "warn",
        ),
        ("p99 < 60ms (edge=loadgen->frontend)", {"edge": "loadgen->frontend"}, "error"),
    ]


def test_slo_where_names_services_and_edges() -> None:
    text = slos(
        '{objective: "p99 < 60ms", where: {service: db}}',
        '{objective: "p99 < 60ms", where: {edge: backend->frontend, phase: later}}',
        '{name: x, objective: "p99 < 60ms"}',
        '{name: x, objective: "p99 < 60ms"}',
    )
    assert errors(text) == [
        "exp.yaml:17:50: service: unknown service 'db'; services: frontend, backend",
        "exp.yaml:18:47: warning: edge: backend never calls frontend: no traffic to measure",
        "exp.yaml:18:73: phase: expected one of baseline, fault, recovery, all, got 'later'",
        "exp.yaml:20:14: name: a second SLO called 'x'",
    ]


def test_default_slo_names_are_unique() -> None:
    exp = parse(slos('{objective: "p99 < 60ms"}', '{objective: "p99 < 60ms", where: {phase: all}}'))
    assert [s.name for s in exp.slos] == ["p99 < 60ms", "p99 < 60ms #2"]


def test_the_quickstart_loads() -> None:
    path = Path(__file__).parents[2] / "experiments" / "quickstart.yaml"
    exp = load_experiment(path)
    assert exp.warnings == ()
    assert [s.name for s in exp.services] == ["frontend", "backend"]


def test_a_recursive_alias_is_refused() -> None:
    assert errors(edit("  name: tiny", "  name: tiny\n  x: &loop [1, *loop]")) == [
        "exp.yaml:5:3: unknown field 'x'; known fields: description, name",
        "exp.yaml:5:6: a recursive alias: a value cannot contain itself",
    ]


def test_only_the_top_is_reported_without_a_spec() -> None:
    assert errors("apiVersion: meshchaos/v1\nkind: Experiment\nmetadata: {name: x}\n") == [
        "exp.yaml:1:1: spec: required field is missing",
    ]


# --- SLO guard rails, steady state, relative objectives, routes ---------------------------------

SLOW = "{target: backend, start: 4s, duration: 3s, delay: {fixed: 50ms}}"


def fault_and_slos(fault: str, *lines: str) -> str:
    """BASE with one fault (line 17) and SLOs from line 19 on."""
    return with_lines(
        "  faults:", f"    - {fault}", "  slos:", *(f"    - {line}" for line in lines)
    )


def test_guard_rails_and_steady_state_are_read() -> None:
    exp = parse(
        fault_and_slos(
            SLOW,
            '{objective: "p99 < 60ms", steadyState: true}',
            '{objective: "error_rate < 5%", abortOnFail: true, delay: 2s}',
            '{objective: "p99 <= baseline * 2", where: {phase: fault}}',
            '{objective: "recovery_time < 2s"}',
        )
    )
    steady, guard, relative, recovery = exp.slos
    assert (steady.name, steady.where, steady.steady_state) == (
        "p99 < 60ms (phase=baseline)",
        {"phase": "baseline"},
        True,
    )
    assert (guard.abort_on_fail, guard.abort_delay_s, guard.steady_state) == (True, 2.0, False)
    assert (relative.abort_on_fail, relative.abort_delay_s) == (False, 0.0)
    assert recovery.where == {}


@pytest.mark.parametrize(
    ("slo", "diagnostic"),
    [
        (
            '{objective: "p99 < 60ms", delay: 2s}',
            "exp.yaml:19:40: delay: applies only with abortOnFail: true",
        ),
        (
            '{objective: "p99 < 60ms", abortOnFail: true, severity: warn}',
            "exp.yaml:19:46: abortOnFail: a warn SLO only reports: it cannot stop the run "
            "(remove one)",
        ),
        (
            '{objective: "recovery_time < 2s", abortOnFail: true}',
            "exp.yaml:19:54: abortOnFail: recovery_time is known only at the end of the run",
        ),
        (
            '{objective: "p99 < 60ms", steadyState: true, where: {phase: fault}}',
            "exp.yaml:19:46: steadyState: a steady-state SLO is checked at the end of the "
            "baseline, not in phase fault: remove where.phase",
        ),
        (
            '{objective: "p99 < baseline * 2", steadyState: true}',
            "exp.yaml:19:54: steadyState: p99 relative to the baseline cannot be checked at the "
            "end of the baseline",
        ),
        (
            '{objective: "p99 < baseline * 2", where: {phase: baseline}}',
            "exp.yaml:19:19: objective: compares the baseline with itself: a relative "
            "objective needs another phase",
        ),
        (
            '{objective: "recovery_time < 2s", where: {phase: recovery}}',
            "exp.yaml:19:56: phase: recovery_time is measured from the end of the last fault: "
            "it takes no phase",
        ),
        (
            '{objective: "p99 < 60ms", where: {route: /pay}}',
            "exp.yaml:19:48: route: the load sends no request to '/pay'; its paths: /",
        ),
        (
            '{objective: "p99 < 60ms", where: {status: 500}}',
            "exp.yaml:19:49: status: expected one of 2xx, 3xx, 4xx, 5xx, connect, reset, "
            "timeout, got 500",
        ),
        (
            '{objective: "p99 < 60ms", where: {route: /, service: backend}}',
            "exp.yaml:19:48: route: route and status select the load generator's requests to "
            "frontend: they cannot be combined with another service or an edge",
        ),
        (
            '{objective: "p99 < 60ms", where: {status: reset, service: backend}}',
            "exp.yaml:19:49: status: status reset selects the load generator's requests to "
            "frontend: on another service or an edge use 2xx, 3xx, 4xx or 5xx",
        ),
        (
            '{objective: "p99 < 60ms", steadyState: 1}',
            "exp.yaml:19:46: steadyState: expected true or false, got 1",
        ),
    ],
)
def test_slo_mistakes_are_shown_at_their_line(slo: str, diagnostic: str) -> None:
    assert errors(fault_and_slos(SLOW, slo)) == [diagnostic]


def test_relative_and_steady_state_slos_need_a_baseline() -> None:
    text = fault_and_slos(
        "{target: backend, start: 0s, duration: 3s, delay: {fixed: 50ms}}",
        '{objective: "p99 < 60ms", steadyState: true}',
        '{objective: "p99 < baseline * 2"}',
    )
    assert errors(text) == [
        "exp.yaml:19:46: steadyState: there is no baseline to check it on: the first fault "
        "starts at 0s",
        "exp.yaml:20:19: objective: has no baseline to compare with: the first fault starts at 0s",
    ]


def test_recovery_time_needs_a_fault_that_ends() -> None:
    assert errors(slos('{objective: "recovery_time < 2s"}')) == [
        "exp.yaml:17:19: objective: recovery_time needs every fault to end before the "
        "measurement does: there are no faults",
    ]
    until_the_end = "{target: backend, start: 4s, delay: {fixed: 50ms}}"
    assert errors(fault_and_slos(until_the_end, '{objective: "recovery_time < 2s"}')) == [
        "exp.yaml:19:19: objective: recovery_time needs every fault to end before the "
        "measurement does",
    ]


def test_a_route_is_suggested_and_routes_select_the_load() -> None:
    text = edit(
        "load: {target: frontend, rate: 10/s}",
        "load: {target: frontend, rate: 10/s, requests: [{path: /pay}, {path: /cart}]}",
    )
    text += '  slos:\n    - {objective: "p99 < 60ms", where: {route: /par}}\n'
    assert errors(text) == [
        "exp.yaml:17:48: route: the load sends no request to '/par' (did you mean '/pay'?); "
        "its paths: /pay, /cart",
    ]
    exp = parse(text.replace("/par}", "/pay, status: 5xx, service: frontend}"))
    assert exp.slos[0].where == {"route": "/pay", "status": "5xx", "service": "frontend"}


def test_a_guard_rail_that_waits_past_the_end_is_a_warning() -> None:
    exp = parse(slos('{objective: "p99 < 60ms", abortOnFail: true, delay: 10s}'))
    assert exp.warnings == (
        "exp.yaml:17:59: warning: delay: the run measures 10s: a guard rail that waits 10s is "
        "never checked",
    )
