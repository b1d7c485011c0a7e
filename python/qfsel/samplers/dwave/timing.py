"""QPU timing: the estimate before a job, the measured timing after it, and its share per problem.

Estimate (microseconds of QPU access time per job). When the sampler exposes
a cloud-client solver (``DWaveSampler().solver``), qfsel calls its
``estimate_qpu_access_time(num_qubits, num_reads=..., annealing_time=...,
...)``, which uses the solver's ``problem_timing_data`` property. Otherwise
(a mock, or a solver without timing data) it uses this documented model::

    access = programming + num_reads * (anneal + readout + delay)
    programming = 14,100 us + programming_thermalization   (default 1,000 us)
    anneal      = annealing_time, or the last time of anneal_schedule,
                  or the solver's default_annealing_time (default 20 us)
    readout     = 230 us per read    delay = 21 us per read

The constants are typical of an Advantage system with a few hundred to a few
thousand active qubits (readout grows with the number of qubits read); for
small jobs the model over-estimates, which is the safe side for a budget.

Measured timing is read from ``sampleset.info["timing"]`` (SAPI's
microsecond fields ``qpu_access_time``, ``qpu_programming_time``,
``qpu_sampling_time``, ``qpu_anneal_time_per_sample``, ...). It is kept apart
from the client-side ``wall_s`` of the job (submission to answer);
``wall_s - qpu_access_time`` is the network, queue and SAPI overhead, which the
client cannot split further. A packed job's access, programming and sampling
time is shared out equally among the problems it carried (they were
programmed together and read out together); per-sample times are not divided.
"""

from __future__ import annotations

from typing import Any

__all__ = ["estimate_access_time_us", "MODEL", "share"]

#: The fallback timing model's constants, microseconds.
MODEL = {"programming_us": 14_100.0, "programming_thermalization_us": 1_000.0, "anneal_us": 20.0,
         "readout_us": 230.0, "delay_us": 21.0}

_ESTIMATE_PARAMS = ("annealing_time", "anneal_schedule", "initial_state", "reinitialize_state",
                    "programming_thermalization", "readout_thermalization", "reduce_intersample_correlation")


def _solver_of(qpu: Any) -> Any:
    for obj in (qpu, getattr(qpu, "child", None)):
        solver = getattr(obj, "solver", None)
        if solver is not None and hasattr(solver, "estimate_qpu_access_time"):
            return solver
    return None


def estimate_access_time_us(qpu: Any, num_qubits: int, num_reads: int, params: dict[str, Any]) -> tuple[float, str]:
    """``(microseconds, source)`` of QPU access time for one job; source is
    ``"dwave-cloud-client"`` or ``"qfsel model"``."""
    kwargs = {k: params[k] for k in _ESTIMATE_PARAMS if params.get(k) is not None}
    solver = _solver_of(qpu)
    if solver is not None:
        try:
            return float(solver.estimate_qpu_access_time(num_qubits, num_reads=num_reads, **kwargs)), "dwave-cloud-client"
        except (KeyError, ValueError, TypeError):
            pass  # solver without problem_timing_data: fall back to the model
    props = getattr(qpu, "properties", None) or {}
    props = props.get("qpu_properties", props)
    anneal = params.get("annealing_time")
    if anneal is None and params.get("anneal_schedule"):
        anneal = params["anneal_schedule"][-1][0]
    if anneal is None:
        anneal = props.get("default_annealing_time", MODEL["anneal_us"])
    therm = params.get("programming_thermalization")
    if therm is None:
        therm = props.get("default_programming_thermalization", MODEL["programming_thermalization_us"])
    readout_therm = params.get("readout_thermalization") or props.get("default_readout_thermalization", 0.0)
    per_read = float(anneal) + MODEL["readout_us"] + MODEL["delay_us"] + float(readout_therm)
    return MODEL["programming_us"] + float(therm) + num_reads * per_read, "qfsel model"


_SHARED = ("qpu_access_time", "qpu_programming_time", "qpu_sampling_time", "qpu_access_overhead_time",
           "total_post_processing_time", "post_processing_overhead_time", "run_time", "charge_time")


def share(timing: dict[str, Any], n: int) -> dict[str, float]:
    """One problem's share of a job's SAPI timing (microseconds) when ``n`` problems shared the job."""
    out: dict[str, float] = {}
    for key, value in (timing or {}).items():
        if isinstance(value, (int, float)):
            out[key] = float(value) / n if key in _SHARED else float(value)
    out["shared_by"] = float(n)
    return out
