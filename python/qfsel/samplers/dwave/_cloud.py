"""Leap credentials, solver construction and error translation for the D-Wave routes.

Credentials come from dwave-cloud-client's usual sources (keyword ``token``,
``DWAVE_API_TOKEN``, the configuration file written by ``dwave setup`` /
``dwave config create``, optionally a ``profile`` or ``config_file``). They are
looked up *before* any embedding or model building, so a missing token costs
nothing. The token itself is never logged, never stored in a result and never
part of an error message: every message built from a client exception passes
through :func:`redact`.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, Callable

from ..._checks import check_num_threads, check_positive_int, check_positive_real
from ...exceptions import CredentialsError, RemoteSolverError, SolverTimeoutError, SolverUnavailableError

#: Client configuration keys a route accepts (dwave-cloud-client's names).
CLIENT_PARAMETERS = ("solver", "token", "profile", "config_file", "region", "endpoint", "request_timeout", "polling_timeout")

_HOW_TO = (
    "configure a Leap API token with `dwave setup` (or `dwave config create`), "
    "or set the DWAVE_API_TOKEN environment variable, or pass token=... (see qfsel's docs/dwave.md)"
)


def _secrets(config: dict[str, Any]) -> list[str]:
    """Strings that must never be shown: the configured token(s)."""
    out = []
    tok = config.get("token")
    if isinstance(tok, str) and tok:
        out.append(tok)
    try:  # the token the client would load itself (env or file)
        from dwave.cloud.config import load_config

        loaded = load_config(config_file=config.get("config_file"), profile=config.get("profile")).get("token")
        if isinstance(loaded, str) and loaded and loaded not in out:
            out.append(loaded)
    except Exception:  # noqa: BLE001 - a broken config file is reported by check_credentials
        pass
    return out


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any long piece of one) replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
            # tokens look like "DEV-0123abcd..." -- also hide the part after the prefix
            tail = s.split("-", 1)[-1]
            if len(tail) >= 8:
                text = text.replace(tail, "***")
    return text


def client_config(params: dict[str, Any]) -> dict[str, Any]:
    """The client keyword arguments among a route's parameters (``None`` values dropped)."""
    return {k: params[k] for k in CLIENT_PARAMETERS if params.get(k) is not None}


def check_credentials(route: str, config: dict[str, Any]) -> list[str]:
    """Raise :class:`CredentialsError` unless a token is configured; return the secrets to redact."""
    if isinstance(config.get("token"), str) and config["token"]:
        return _secrets(config)
    try:
        from dwave.cloud.config import load_config

        loaded = load_config(config_file=config.get("config_file"), profile=config.get("profile"))
    except Exception as exc:  # noqa: BLE001 - ConfigFileReadError, ConfigFileParseError, ValueError (profile)
        raise CredentialsError(
            f"sampler {route!r}: could not read the D-Wave configuration ({type(exc).__name__}: "
            f"{redact(str(exc), _secrets({}))}); {_HOW_TO}"
        ) from None
    if not loaded.get("token"):
        where = f" in profile {config['profile']!r}" if config.get("profile") else ""
        raise CredentialsError(f"sampler {route!r}: no D-Wave API token found{where}; {_HOW_TO}")
    return _secrets(config)


def translate(route: str, exc: BaseException, secrets: list[str], what: str) -> RemoteSolverError:
    """A qfsel error (naming the route, token redacted) for a client exception."""
    from dwave.cloud import exceptions as cx

    msg = redact(f"{type(exc).__name__}: {exc}", secrets)
    unavailable = (cx.SolverNotFoundError, cx.SolverOfflineError, cx.UnsupportedSolverError, cx.SolverFailureError)
    timeouts = (cx.RequestTimeout, cx.PollingTimeout, concurrent.futures.TimeoutError, TimeoutError)
    if isinstance(exc, cx.SolverAuthenticationError):
        return RemoteSolverError(f"sampler {route!r}: the D-Wave API refused the token while {what} ({msg}); {_HOW_TO}", route)
    if isinstance(exc, unavailable):
        return SolverUnavailableError(f"sampler {route!r}: solver unavailable while {what} ({msg})", route)
    if isinstance(exc, timeouts):
        return SolverTimeoutError(f"sampler {route!r}: timed out while {what} ({msg})", route)
    return RemoteSolverError(f"sampler {route!r}: failed while {what} ({msg})", route)


def connect(route: str, factory: Callable[..., Any], config: dict[str, Any], secrets: list[str]) -> Any:
    """``factory(**config)`` with client errors translated (the token never shown)."""
    try:
        return factory(**config)
    except (TypeError, ValueError) as exc:
        from dwave.cloud import exceptions as cx

        if isinstance(exc, (cx.InvalidProblemError,)):
            raise
        raise type(exc)(redact(f"sampler {route!r}: {exc}", secrets)) from None
    except Exception as exc:  # noqa: BLE001 - network, SAPI, solver selection
        raise translate(route, exc, secrets, "connecting to the solver") from None


def wait(sampleset: Any, timeout: float | None) -> None:
    """Block until a (non-blocking) dimod sampleset is done, or raise ``TimeoutError`` after ``timeout`` s."""
    if timeout is None or sampleset.done():
        return
    deadline = time.monotonic() + timeout
    while not sampleset.done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer within timeout={timeout} s")
        time.sleep(min(0.05, timeout))


def collect(route: str, ss: Any, rec: Any, t_sub: float, remote: list[float], timeout: float | None,
            secrets: list[str], what: str) -> RemoteSolverError | None:
    """Waits for one submitted job and records its wall time on ``rec`` (a ``JobRecord``).

    ``ss`` is the job's non-blocking sampleset, or the exception its submission raised;
    ``remote`` holds [first submission, last answer] and is widened here. Returns the job's
    qfsel error (also stored as ``rec.error``), or None when the answer arrived.
    """
    try:
        if isinstance(ss, BaseException):
            raise ss
        wait(ss, timeout)
        ss.resolve()
        rec.wall_s = time.perf_counter() - t_sub
        remote[0] = min(remote[0], t_sub)
        remote[1] = time.perf_counter()
    except Exception as exc:  # noqa: BLE001
        err = translate(route, exc, secrets, what)
        rec.error = str(err)
        return err
    return None


def check_job_options(p: dict[str, Any]) -> None:
    """Checks (in place) the options every remote route takes: ``max_per_job``, ``timeout``,
    ``pack``, ``label`` and ``num_threads`` (accepted for solve()'s uniform signature; the work
    is remote)."""
    if p.get("max_per_job") is not None:
        p["max_per_job"] = check_positive_int("max_per_job", p["max_per_job"])
    if p.get("timeout") is not None:
        p["timeout"] = check_positive_real("timeout", p["timeout"])
    if not isinstance(p.get("pack", True), bool):
        raise TypeError(f"pack: expected True or False, got {type(p['pack']).__name__}")
    if p.get("label") is not None and not isinstance(p["label"], str):
        raise TypeError(f"label: expected a string, got {type(p['label']).__name__}")
    if p.get("num_threads") is not None:
        check_num_threads("num_threads", p["num_threads"])
