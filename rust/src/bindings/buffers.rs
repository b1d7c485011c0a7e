//! Reading and writing numpy arrays through the buffer protocol (no
//! rust-numpy for pyo3 0.17 in Debian): check element type, rank, shape and
//! contiguity at the edge, with messages that name the argument.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::errors::invalid;

fn get<T: Element>(obj: &PyAny, name: &str, dtype: &str) -> PyResult<PyBuffer<T>> {
    PyBuffer::<T>::get(obj).map_err(|_| {
        PyTypeError::new_err(format!(
            "{name}: expected a C-contiguous numpy array of dtype {dtype}, got {}",
            obj.get_type().name().unwrap_or("an object without a buffer")
        ))
    })
}

fn check_shape(name: &str, shape: &[usize], expected: &[Option<usize>]) -> PyResult<()> {
    let ok = shape.len() == expected.len()
        && shape.iter().zip(expected).all(|(s, e)| e.map_or(true, |e| e == *s));
    if ok {
        Ok(())
    } else {
        let want: Vec<String> = expected.iter().map(|e| e.map_or("*".to_string(), |v| v.to_string())).collect();
        Err(invalid(name, &format!("shape ({})", want.join(", ")), format!("shape {shape:?}")))
    }
}

/// Copy a C-contiguous array of `T` with the expected shape (`None` = any
/// extent) into a `Vec`, returning its shape too.
pub fn read<T: Element + Copy>(
    py: Python<'_>,
    obj: &PyAny,
    name: &str,
    dtype: &str,
    expected: &[Option<usize>],
) -> PyResult<(Vec<T>, Vec<usize>)> {
    let buf = get::<T>(obj, name, dtype)?;
    if !buf.is_c_contiguous() {
        return Err(invalid(name, "a C-contiguous array", "a strided view"));
    }
    let shape = buf.shape().to_vec();
    check_shape(name, &shape, expected)?;
    Ok((buf.to_vec(py)?, shape))
}

/// Copy `data` into the caller-allocated writable array `obj` of shape `expected`.
pub fn write<T: Element + Copy>(
    py: Python<'_>,
    obj: &PyAny,
    name: &str,
    dtype: &str,
    expected: &[usize],
    data: &[T],
) -> PyResult<()> {
    let buf = get::<T>(obj, name, dtype)?;
    if buf.readonly() {
        return Err(invalid(name, "a writable array", "a read-only one"));
    }
    if !buf.is_c_contiguous() {
        return Err(invalid(name, "a C-contiguous array", "a strided view"));
    }
    let want: Vec<Option<usize>> = expected.iter().map(|&e| Some(e)).collect();
    check_shape(name, buf.shape(), &want)?;
    buf.copy_from_slice(py, data)
}
