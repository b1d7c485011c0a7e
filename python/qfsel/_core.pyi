# Hand-written stubs of qfsel's private Rust extension (rust/src/bindings/).
# Checked against the built module by tests/test_stubs.py (mypy.stubtest).
# Array arguments are C-contiguous numpy arrays of the dtype named in each
# docstring; "*_out" arrays are allocated by the caller and written in place.

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]

MAX_UNCONSTRAINED_VARIABLES: int
DEFAULT_MAX_SUBSETS: int
SINGLE_PRECISION_MAX_RANGE: float

# -- qubo.rs ------------------------------------------------------------------
def fs_check_batch(
    h: _F64,
    J: _F64,
    rtol: float,
    beta: float | None,
    penalties_out: _F64,
    h_copy: _F64 | None,
    J_copy: _F64 | None,
    num_threads: int,
) -> tuple[str, list[int], float, float] | None: ...
def fs_qubo_batch(
    h: _F64,
    J: _F64,
    beta: float,
    k: int | None,
    penalties: _F64,
    q_out: _F64,
    offsets_out: _F64,
    num_threads: int,
) -> None: ...
def fs_energies_batch(h: _F64, J: _F64, beta: float, states: _U8, out: _F64, num_threads: int) -> None: ...
def qubo_energies_batch(q: _F64, offsets: _F64, states: _U8, out: _F64, num_threads: int) -> None: ...

# -- exact.rs -----------------------------------------------------------------
def exact_ground_states_batch(
    q: _F64, offsets: _F64, k: int | None, max_states: int, max_subsets: int, num_threads: int
) -> tuple[list[float], list[int], list[int], list[int], bytes]: ...

# -- sa.rs --------------------------------------------------------------------
def sa_dense_batch(
    q: _F64,
    offsets: _F64,
    betas: _F64,
    num_reads: int,
    seed: int,
    k: int | None,
    initial_states: _U8 | None,
    greedy: bool,
    polish: int,
    single: bool | None,
    num_threads: int,
    best_states_out: _U8,
    best_energies_out: _F64,
    energies_out: _F64,
    states_out: _U8 | None,
) -> None: ...
def sa_default_beta_ranges(
    q: _F64, offsets: _F64, k: int | None, single: bool | None, num_threads: int, out: _F64
) -> None: ...
def sa_single_precision(q: _F64, num_threads: int) -> list[bool]: ...
def sa_sparse(
    linear: _F64,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    values: _F64,
    offset: float,
    betas: _F64,
    num_reads: int,
    seed: int,
    initial_states: _U8 | None,
    greedy: bool,
    single: bool,
    num_threads: int,
    states_out: _U8,
    energies_out: _F64,
) -> None: ...
def sa_sparse_default_beta_range(
    linear: _F64, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], values: _F64
) -> tuple[float, float]: ...

# -- tabu.rs ------------------------------------------------------------------
def tabu_batch(
    q: _F64,
    offsets: _F64,
    k: int | None,
    num_reads: int,
    seed: int,
    num_iterations: int | None,
    timeout_ms: float | None,
    tenure: int | None,
    num_restarts: int,
    elite_size: int,
    energy_threshold: float | None,
    initial_states: _U8 | None,
    best_states: _U8,
    best_energies: _F64,
    read_energies: _F64,
    read_states: _U8 | None,
    num_threads: int,
) -> tuple[int, int, float]: ...
def greedy_batch(q: _F64, offsets: _F64, k: int | None, states: _U8, energies: _F64, num_threads: int) -> float: ...

# -- sqa.rs -------------------------------------------------------------------
SQA_MAX_TIME_COUPLING: float

def sqa_dense_batch(
    q: _F64,
    offsets: _F64,
    gamma: _F64,
    scale: _F64,
    num_slices: int,
    temperature: _F64,
    num_reads: int,
    seed: int,
    k: int | None,
    initial_states: _U8 | None,
    global_moves: bool,
    best_slice: bool,
    descent: bool,
    single: bool | None,
    num_threads: int,
    states_out: _U8,
    energies_out: _F64,
) -> None: ...
def sqa_time_coupling(x: float) -> float: ...
# -- quantum.rs ---------------------------------------------------------------
QA_MAX_QUBITS: int
QA_BYTES_PER_AMPLITUDE: int
QA_MAX_XY_DIM: int

def qa_anneal_batch(
    qs: list[_F64],
    offsets: list[float],
    driver_scales: list[float],
    s: _F64,
    a: _F64,
    b: _F64,
    tasks_problem: list[int],
    tasks_t: list[float],
    tasks_shots: list[int],
    fixed_steps: list[int | None],
    integrator: str,
    tol: float,
    initial_steps: int,
    max_steps: int,
    gs_tol: float,
    seed: int,
    xy_k: int | None,
    xy_graph: str,
    max_qubits: int,
    num_threads: int,
) -> list[tuple[float, float, int, float, float, bool, int, float, int, bool]]: ...
def qa_anneal_state(
    q: _F64,
    offset: float,
    driver_scale: float,
    s: _F64,
    a: _F64,
    b: _F64,
    t_total: float,
    fixed_steps: int | None,
    integrator: str,
    tol: float,
    initial_steps: int,
    max_steps: int,
    xy_k: int | None,
    xy_graph: str,
    max_qubits: int,
    gs_tol: float,
    shots: int,
    seed: int,
    out_re: _F64,
    out_im: _F64,
    num_threads: int,
) -> tuple[float, float, int, float, float, bool, int, float, int, bool]: ...
def qa_spectrum_batch(
    qs: list[_F64],
    offsets: list[float],
    driver_scales: list[float],
    a_points: list[float],
    b_points: list[float],
    levels: int,
    tol: float,
    max_krylov: int,
    xy_k: int | None,
    xy_graph: str,
    max_qubits: int,
    out: _F64,
    num_threads: int,
) -> list[tuple[int, bool, float]]: ...
def qa_energies(q: _F64, offset: float, max_qubits: int, out: _F64) -> None: ...
def qa_xy_basis(d: int, k: int) -> list[int]: ...
