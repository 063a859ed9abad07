//! Records across the boundary: the core's events and reports become Python dicts and
//! lists with exactly the keys and values of their manifest JSON (what `json.loads` of
//! the line gave before), and a metadata dict becomes the JSON object of a line.
//! pythonize would do this, but has no release for our PyO3 yet.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::invalid_argument;

/// A JSON value as the Python object `json.loads` makes of it.
pub(crate) fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

/// A JSON object as a dict (keys in their JSON order).
pub(crate) fn map_to_py<'py>(py: Python<'py>, map: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, value_to_py(py, v)?)?;
    }
    Ok(dict)
}

/// Any serialisable core record (event, state, gc action, report) as Python objects.
pub(crate) fn to_py<'py, T: serde::Serialize>(py: Python<'py>, record: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(record).map_err(|e| crate::errors::to_pyerr(e.into()))?;
    value_to_py(py, &value)
}

/// A list of records.
pub(crate) fn list_to_py<'py, T: serde::Serialize>(py: Python<'py>, records: &[T]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in records {
        list.append(to_py(py, r)?)?;
    }
    Ok(list)
}

/// The metadata dict of a send as the JSON object of its manifest lines, with the rules
/// of `json.dumps(..., allow_nan=False)`: str keys (int, float, bool and None keys are
/// spelled as JSON spells them), values None, bool, int, finite float, str, list, tuple
/// and dict; anything else is an `InvalidArgumentError`.
pub(crate) fn metadata_from_py(dict: &Bound<'_, PyDict>) -> PyResult<Map<String, Value>> {
    let mut map = Map::new();
    for (k, v) in dict.iter() {
        let key = json_key(&k)?;
        let value = py_to_value(&v, &key)?;
        map.insert(key, value);
    }
    Ok(map)
}

fn not_json(what: &Bound<'_, PyAny>, at: &str) -> PyErr {
    let type_name = what.get_type().qualname().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    invalid_argument(format!(
        "metadata must be JSON-serialisable: metadata[{at:?}] is a {type_name}; use str, int, float, bool, None, lists and dicts"
    ))
}

fn json_key(k: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if k.is_none() {
        return Ok("null".into());
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.into());
    }
    if k.is_instance_of::<PyInt>() || k.is_instance_of::<PyFloat>() {
        return Ok(k.repr()?.to_cow()?.into_owned());
    }
    Err(invalid_argument(format!(
        "metadata must be JSON-serialisable: key {} is a {}; use str keys",
        k.repr().map(|r| r.to_string()).unwrap_or_default(),
        k.get_type().qualname().map(|n| n.to_string()).unwrap_or_default()
    )))
}

fn py_to_value(v: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(invalid_argument(format!(
            "metadata must be JSON-serialisable: metadata[{at:?}] is an integer beyond 64 bits; send it as a str"
        )));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let x = f.value();
        return Number::from_f64(x).map(Value::Number).ok_or_else(|| {
            invalid_argument(format!(
                "metadata must be JSON-serialisable: metadata[{at:?}] is {x}, which JSON cannot hold (allow_nan=False)"
            ))
        });
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, item) in d.iter() {
            let key = json_key(&k)?;
            let value = py_to_value(&item, &format!("{at}.{key}"))?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = v.cast::<PyList>() {
        return l.iter().map(|item| py_to_value(&item, at)).collect::<PyResult<_>>().map(Value::Array);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return t.iter().map(|item| py_to_value(&item, at)).collect::<PyResult<_>>().map(Value::Array);
    }
    Err(not_json(v, at))
}
