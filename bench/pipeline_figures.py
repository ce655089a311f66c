"""The figures ``bench.pipeline`` prints for a burst and for the steady phase."""

from __future__ import annotations

from dataclasses import dataclass

from bench._harness import detail, figure, load_average, rate, say
from bench.pipeline_load import EVENTS_PER_PATIENT, Posted
from bench.pipeline_profile import Profiles
from bench.pipeline_report import LagSeries, Outcomes, percentile
from revisit.stack import DEMO_CLINIC

E2E_TARGET = 1000.0  # EHR events/s, end to end, burst
P99_TARGET_MS = 250.0  # steady ingest -> eligibility


@dataclass(frozen=True)
class BurstResult:
    patients: int
    accepted_rate: float
    end_to_end_rate: float  # EHR events/s, first POST to last settled outcome


def ms_line(per_patient: dict[str, float]) -> str:
    ordered = sorted(per_patient.items(), key=lambda kv: -kv[1])
    total = sum(per_patient.values())
    return ", ".join(f"{n} {v:.2f} ms" for n, v in ordered) + f"; all {total:.2f} ms"


def cpu_line(shares: dict[str, float]) -> str:
    return ", ".join(f"{n} {v:.0f}%" for n, v in sorted(shares.items(), key=lambda kv: -kv[1]))


def report_burst(
    label: str,
    size: int,
    posted: Posted,
    outcomes: Outcomes,
    wall_start: float,
    settled_all: bool,
    shares: dict[str, float],
    profiles: Profiles,
) -> BurstResult:
    settled = [o.settled_at for o in outcomes.patients.values() if o.settled_at is not None]
    span = (max(settled) - wall_start) if settled else 0.0
    done = len(settled)
    e2e = rate(done * EVENTS_PER_PATIENT, span)
    wrongly = sum(1 for o in outcomes.patients.values() if o.blocked)
    deferred = sum(1 for o in outcomes.patients.values() if o.deferred)
    name = f"pipeline_burst_{label}"
    say(
        figure(
            f"{name}_accepted",
            posted.rate(),
            "events/s",
            f"EHR events accepted by ingest; {posted.events} events, {posted.refused} refused",
        )
    )
    say(
        figure(
            f"{name}_end_to_end",
            e2e,
            "events/s",
            f"target >= {E2E_TARGET:.0f}; EHR events, first POST to last outcome, {span:.1f} s",
        )
    )
    say(
        figure(
            f"{name}_patients",
            rate(done, span),
            "patients/s",
            f"to a settled outcome: sent, or blocked for good; {done}/{size}",
        )
    )
    say(
        figure(
            f"{name}_wrongly_blocked",
            float(wrongly),
            "patients",
            f"target 0; share {wrongly / size:.4%}",
        )
    )
    say(
        figure(
            f"{name}_unsettled",
            float(size - done),
            "patients",
            "target 0; nothing sent or blocked when the run stalled"
            if not settled_all
            else "target 0",
        )
    )
    detail(f"burst {label}: deferred once or more (quiet hours, caps): {deferred}")
    detail(f"burst {label}: load average at the end {load_average()}")
    detail(f"burst {label}: cpu, % of one core: {cpu_line(shares)}")
    for service, summary in profiles.summaries.items():
        top = "; ".join(
            f"{f} {100 * n / max(summary.samples, 1):.0f}%" for f, n in summary.top_self[:6]
        )
        own = "; ".join(
            f"{f} {100 * n / max(summary.samples, 1):.0f}%" for f, n in summary.top_own[:6]
        )
        detail(f"profile {service} ({summary.samples} samples) self: {top}")
        detail(f"profile {service} own code (inclusive): {own}")
    if e2e < E2E_TARGET:
        say(f"BELOW TARGET: {name}_end_to_end {e2e:.0f} < {E2E_TARGET:.0f} events/s")
    if wrongly:
        say(f"BELOW TARGET: {name}_wrongly_blocked {wrongly} > 0")
    return BurstResult(size, posted.rate(), e2e)


def report_steady(
    run: str,
    offered: float,
    posted: Posted,
    outcomes: Outcomes,
    series: LagSeries,
    shares: dict[str, float],
) -> None:
    to_eligible: list[float] = []
    to_sent: list[float] = []
    for index, accepted in posted.accepted_at.items():
        o = outcomes.patients.get(f"{DEMO_CLINIC}:{run}-{index:07d}")
        if o is None or o.eligible_at is None:
            continue
        to_eligible.append(1000 * max(0.0, o.eligible_at - accepted))
        if o.sent_at is not None:
            to_sent.append(1000 * max(0.0, o.sent_at - o.eligible_at))
    say(
        figure(
            "pipeline_steady_offered",
            offered,
            "events/s",
            "half the best burst's end-to-end rate unless --steady-rate",
        )
    )
    say(
        figure(
            "pipeline_steady_accepted",
            posted.rate(),
            "events/s",
            f"{posted.events} EHR events accepted, {posted.refused} refused",
        )
    )
    p99 = percentile(to_eligible, 99)
    say(
        figure(
            "pipeline_steady_ingest_to_eligibility_p50",
            percentile(to_eligible, 50),
            "ms",
            f"{len(to_eligible)} patients",
        )
    )
    say(
        figure(
            "pipeline_steady_ingest_to_eligibility_p99", p99, "ms", f"target <= {P99_TARGET_MS:.0f}"
        )
    )
    say(
        figure(
            "pipeline_steady_eligibility_to_sent_p50",
            percentile(to_sent, 50),
            "ms",
            f"{len(to_sent)} patients",
        )
    )
    say(
        figure(
            "pipeline_steady_eligibility_to_sent_p99",
            percentile(to_sent, 99),
            "ms",
            "eligibility published -> MessageSent published",
        )
    )
    worst = max((series.growth(g) for g in series.groups()), default=0.0)
    say(
        figure(
            "pipeline_steady_lag_growth",
            worst,
            "messages",
            "worst group: mean lag of the last third minus the first; ~0 when every group keeps up",
        )
    )
    for group in series.groups():
        points = [
            f"{at:.0f}s:{lag.get(group, 0)}"
            for at, lag in series.samples[:: max(1, len(series.samples) // 10)]
        ]
        peak, growth = series.peak(group), series.growth(group)
        detail(f"lag {group}: peak {peak}, growth {growth:+.0f}; {' '.join(points)}")
    for name, share in sorted(shares.items()):
        say(figure(f"pipeline_steady_cpu_{name}", share, "% of a core", "during the steady phase"))
    wrongly = sum(1 for o in outcomes.patients.values() if o.blocked)
    say(figure("pipeline_steady_wrongly_blocked", float(wrongly), "patients", "target 0"))
    if p99 > P99_TARGET_MS:
        target = f"{P99_TARGET_MS:.0f}"
        say(f"BELOW TARGET: pipeline_steady_ingest_to_eligibility_p99 {p99:.0f} > {target} ms")
    detail(f"steady: load {load_average()}")
