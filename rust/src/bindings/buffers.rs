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
            obj.get_type()
                .name()
                .unwrap_or("an object without a buffer")
        ))
    })
}

fn check_shape(name: &str, shape: &[usize], expected: &[Option<usize>]) -> PyResult<()> {
    let ok = shape.len() == expected.len()
        && shape
            .iter()
            .zip(expected)
            .all(|(s, e)| e.map_or(true, |e| e == *s));
    if ok {
        Ok(())
    } else {
        let want: Vec<String> = expected
            .iter()
            .map(|e| e.map_or("*".to_string(), |v| v.to_string()))
            .collect();
        Err(invalid(
            name,
            &format!("shape ({})", want.join(", ")),
            format!("shape {shape:?}"),
        ))
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

/// A checked, zero-copy view of a C-contiguous numpy array.
///
/// The buffer export pins the array's memory (numpy refuses to resize an
/// exported array) for as long as the view lives. The slice may be read
/// with the GIL released; the Python wrappers never hand the same array in
/// as input and output.
pub struct View<T: Element> {
    buf: PyBuffer<T>,
    shape: Vec<usize>,
}

impl<T: Element> View<T> {
    /// View `obj` (dtype `T`, shape matching `expected`, `None` = any extent).
    pub fn new(obj: &PyAny, name: &str, dtype: &str, expected: &[Option<usize>]) -> PyResult<Self> {
        let buf = get::<T>(obj, name, dtype)?;
        if !buf.is_c_contiguous() {
            return Err(invalid(name, "a C-contiguous array", "a strided view"));
        }
        let shape = buf.shape().to_vec();
        check_shape(name, &shape, expected)?;
        Ok(View { buf, shape })
    }

    /// Like [`View::new`], for an output array that must be writable.
    pub fn new_mut(obj: &PyAny, name: &str, dtype: &str, expected: &[usize]) -> PyResult<Self> {
        let want: Vec<Option<usize>> = expected.iter().map(|&e| Some(e)).collect();
        let view = Self::new(obj, name, dtype, &want)?;
        if view.buf.readonly() {
            return Err(invalid(name, "a writable array", "a read-only one"));
        }
        Ok(view)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn as_slice(&self) -> &[T] {
        let len = self.buf.item_count();
        if len == 0 {
            return &[];
        }
        // SAFETY: the buffer is C-contiguous, holds `len` items of `T` (checked
        // by PyBuffer::get) and stays exported while `self` lives.
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr() as *const T, len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.buf.item_count();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as in `as_slice`; writability was checked in `new_mut` and
        // `&mut self` keeps this the only slice handed out by this view.
        unsafe { std::slice::from_raw_parts_mut(self.buf.buf_ptr() as *mut T, len) }
    }
}
