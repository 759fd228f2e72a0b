//! Avro readers and writers for labeltrail's event contracts, driven by a plan.
//!
//! Python (`labeltrail.events.codec`) derives a plan from each current Avro schema and its
//! pydantic model: per field its kind (string, long, double, boolean, bytes, timestamp-millis,
//! nullable X, array, map, nested record) and the constraints the model declares beyond the Avro
//! types (`Literal` sets, numeric bounds, lengths). [`Codec`] reads a body straight into the
//! objects the pure-Python compiled reader builds (models built as `model_construct` would,
//! aware UTC datetimes) and refuses, by raising [`Refused`], exactly the messages that reader
//! refuses; the caller then takes its general path. [`Codec::write`] appends the same bytes as
//! the Python writer. [`Rows`] reads whole batches of the hot event types into the replay's
//! light rows.
//!
//! Nothing here decides an error: a refusal only says "not this path".

use std::os::raw::{c_char, c_int};
use std::ptr;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyTuple};

pyo3::create_exception!(
    labeltrail_native,
    Refused,
    pyo3::exceptions::PyException,
    "The native reader does not accept this message (the general path decides)."
);

/// A message the reader does not accept.
struct Refuse;
type R<T> = Result<T, Refuse>;

/// An owned reference (decremented on drop).
struct Own(*mut ffi::PyObject);

impl Own {
    #[inline]
    fn new(p: *mut ffi::PyObject) -> R<Own> {
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            Err(Refuse)
        } else {
            Ok(Own(p))
        }
    }
    #[inline]
    fn into_ptr(self) -> *mut ffi::PyObject {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for Own {
    #[inline]
    fn drop(&mut self) {
        unsafe { ffi::Py_DECREF(self.0) }
    }
}

// plan ------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Limit<T> {
    Ge(T),
    Gt(T),
    Le(T),
    Lt(T),
}

impl<T: PartialOrd + Copy> Limit<T> {
    #[inline]
    fn ok(&self, v: T) -> bool {
        match *self {
            Limit::Ge(b) => v >= b,
            Limit::Gt(b) => v > b,
            Limit::Le(b) => v <= b,
            Limit::Lt(b) => v < b,
        }
    }
}

/// Constraints on one value; empty for most fields.
#[derive(Default)]
struct Checks {
    ints: Vec<Limit<i64>>,
    floats: Vec<Limit<f64>>,
    min_len: Option<isize>,
    max_len: Option<isize>,
    strs: Option<Vec<(Vec<u8>, Py<PyAny>)>>,
    longs: Option<Vec<i64>>,
}

impl Checks {
    fn is_empty(&self) -> bool {
        self.ints.is_empty()
            && self.floats.is_empty()
            && self.min_len.is_none()
            && self.max_len.is_none()
            && self.strs.is_none()
            && self.longs.is_none()
    }
    #[inline]
    fn len_ok(&self, n: isize) -> bool {
        self.min_len.is_none_or(|m| n >= m) && self.max_len.is_none_or(|m| n <= m)
    }
    fn has_len(&self) -> bool {
        self.min_len.is_some() || self.max_len.is_some()
    }
}

struct Record {
    model: Option<Py<PyAny>>,
    names: Vec<Py<PyAny>>,
    nodes: Vec<Node>,
    all: Py<PyAny>,
    /// Rows mode: per field, the row slot it fills and whether a list becomes a tuple.
    picks: Vec<Option<(usize, bool)>>,
}

enum Node {
    Str(Checks),
    Long(Checks),
    Double(Checks),
    Boolean,
    Bytes(Checks),
    Millis,
    /// Rows mode: a timestamp as integer milliseconds, accepted only within [lo, hi].
    MillisInt(i64, i64),
    Optional(Box<Node>),
    Array(Box<Node>, Checks),
    Map(Box<Node>, Checks),
    Record(Box<Record>),
}

fn unsupported(what: String) -> PyErr {
    PyValueError::new_err(what)
}

fn parse_checks(kind: &str, spec: &Bound<'_, PyAny>) -> PyResult<Checks> {
    let mut c = Checks::default();
    for item in spec.try_iter()? {
        let item = item?;
        let (op, value): (String, Bound<'_, PyAny>) = item.extract()?;
        match op.as_str() {
            "ge" | "gt" | "le" | "lt" => match kind {
                "long" => {
                    if !value.is_exact_instance_of::<pyo3::types::PyInt>() {
                        return Err(unsupported(format!("{op} {value} on a long")));
                    }
                    let v: i64 = value.extract()?;
                    c.ints.push(match op.as_str() {
                        "ge" => Limit::Ge(v),
                        "gt" => Limit::Gt(v),
                        "le" => Limit::Le(v),
                        _ => Limit::Lt(v),
                    });
                }
                "double" => {
                    if !value.is_exact_instance_of::<pyo3::types::PyFloat>() {
                        return Err(unsupported(format!("{op} {value} on a double")));
                    }
                    let v: f64 = value.extract()?;
                    c.floats.push(match op.as_str() {
                        "ge" => Limit::Ge(v),
                        "gt" => Limit::Gt(v),
                        "le" => Limit::Le(v),
                        _ => Limit::Lt(v),
                    });
                }
                _ => return Err(unsupported(format!("{op} on {kind}"))),
            },
            "min_len" | "max_len" => {
                if !matches!(kind, "string" | "bytes" | "array" | "map") {
                    return Err(unsupported(format!("{op} on {kind}")));
                }
                let v: isize = value.extract()?;
                if op == "min_len" {
                    c.min_len = Some(c.min_len.map_or(v, |m| m.max(v)));
                } else {
                    c.max_len = Some(c.max_len.map_or(v, |m| m.min(v)));
                }
            }
            "in" => match kind {
                "string" => {
                    if c.strs.is_some() {
                        return Err(unsupported("two Literal sets".into()));
                    }
                    let mut set = Vec::new();
                    for s in value.try_iter()? {
                        let s = s?;
                        let text: String = s.extract()?;
                        set.push((text.into_bytes(), s.unbind()));
                    }
                    c.strs = Some(set);
                }
                "long" => {
                    if c.longs.is_some() {
                        return Err(unsupported("two Literal sets".into()));
                    }
                    let mut set = Vec::new();
                    for s in value.try_iter()? {
                        set.push(s?.extract::<i64>()?);
                    }
                    c.longs = Some(set);
                }
                _ => return Err(unsupported(format!("Literal on {kind}"))),
            },
            _ => return Err(unsupported(format!("constraint {op}"))),
        }
    }
    Ok(c)
}

fn parse_node(spec: &Bound<'_, PyAny>) -> PyResult<Node> {
    let tuple = spec.cast::<PyTuple>()?;
    let kind: String = tuple.get_item(0)?.extract()?;
    let checks = |i: usize| -> PyResult<Checks> { parse_checks(&kind, &tuple.get_item(i)?) };
    Ok(match kind.as_str() {
        "string" => Node::Str(checks(1)?),
        "long" => Node::Long(checks(1)?),
        "double" => Node::Double(checks(1)?),
        "bytes" => Node::Bytes(checks(1)?),
        "boolean" => {
            if !checks(1)?.is_empty() {
                return Err(unsupported("constraints on a boolean".into()));
            }
            Node::Boolean
        }
        "millis" => {
            if !checks(1)?.is_empty() {
                return Err(unsupported("constraints on a timestamp".into()));
            }
            Node::Millis
        }
        "millis_int" => {
            Node::MillisInt(tuple.get_item(1)?.extract()?, tuple.get_item(2)?.extract()?)
        }
        "optional" => Node::Optional(Box::new(parse_node(&tuple.get_item(1)?)?)),
        "array" => Node::Array(Box::new(parse_node(&tuple.get_item(1)?)?), checks(2)?),
        "map" => Node::Map(Box::new(parse_node(&tuple.get_item(1)?)?), checks(2)?),
        "record" => Node::Record(Box::new(parse_record(tuple)?)),
        _ => return Err(unsupported(format!("kind {kind}"))),
    })
}

/// ("record", model or None, names, nodes[, picks])
fn parse_record(tuple: &Bound<'_, PyTuple>) -> PyResult<Record> {
    let py = tuple.py();
    let model = tuple.get_item(1)?;
    let model = if model.is_none() {
        None
    } else {
        Some(model.unbind())
    };
    let mut names = Vec::new();
    for n in tuple.get_item(2)?.try_iter()? {
        let n = n?;
        let text: String = n.extract()?;
        names.push(pyo3::types::PyString::intern(py, &text).into_any().unbind());
    }
    let mut nodes = Vec::new();
    for n in tuple.get_item(3)?.try_iter()? {
        nodes.push(parse_node(&n?)?);
    }
    if names.len() != nodes.len() || names.is_empty() {
        return Err(unsupported("a record needs one node per field".into()));
    }
    let mut picks = vec![None; names.len()];
    if tuple.len() > 4 {
        for (i, p) in tuple.get_item(4)?.try_iter()?.enumerate() {
            let p = p?;
            if !p.is_none() {
                let (slot, as_tuple): (usize, bool) = p.extract()?;
                *picks
                    .get_mut(i)
                    .ok_or_else(|| unsupported("picks".into()))? = Some((slot, as_tuple));
            }
        }
    }
    let all = pyo3::types::PyFrozenSet::new(py, names.iter().map(|n| n.bind(py)))?;
    Ok(Record {
        model,
        names,
        nodes,
        all: all.into_any().unbind(),
        picks,
    })
}

// reading ---------------------------------------------------------------------------------

struct Cur<'a> {
    d: &'a [u8],
    p: usize,
}

impl Cur<'_> {
    #[inline]
    fn byte(&mut self) -> R<u8> {
        let b = *self.d.get(self.p).ok_or(Refuse)?;
        self.p += 1;
        Ok(b)
    }

    /// A zig-zag varint of at most 10 bytes and 64 bits, as the Python reader takes it.
    #[inline]
    fn long(&mut self) -> R<i64> {
        let b = self.byte()?;
        let mut n = (b & 0x7F) as u64;
        if b >= 0x80 {
            let mut shift = 7u32;
            loop {
                let b = self.byte()?;
                let bits = (b & 0x7F) as u64;
                if shift == 63 && bits > 1 {
                    return Err(Refuse);
                }
                n |= bits << shift;
                if b < 0x80 {
                    break;
                }
                shift += 7;
                if shift > 63 {
                    return Err(Refuse);
                }
            }
        }
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    #[inline]
    fn slice(&mut self) -> R<&[u8]> {
        let n = self.long()?;
        if n < 0 {
            return Err(Refuse);
        }
        let end = self.p.checked_add(n as usize).ok_or(Refuse)?;
        let s = self.d.get(self.p..end).ok_or(Refuse)?;
        self.p = end;
        Ok(s)
    }

    #[inline]
    fn double(&mut self) -> R<f64> {
        let end = self.p + 8;
        let s = self.d.get(self.p..end).ok_or(Refuse)?;
        self.p = end;
        Ok(f64::from_le_bytes(s.try_into().map_err(|_| Refuse)?))
    }

    /// An array or map block count (a negative count is followed by the block's byte size).
    #[inline]
    fn count(&mut self) -> R<u64> {
        let c = self.long()?;
        if c < 0 {
            self.long()?;
        }
        Ok(c.unsigned_abs())
    }
}

const MS_PER_DAY: i64 = 86_400_000;
const MIN_DAY: i64 = -719_162; // 0001-01-01
const MAX_DAY: i64 = 2_932_896; // 9999-12-31

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[inline]
fn check_f(c: &Checks, v: f64) -> R<()> {
    if c.floats.iter().all(|b| b.ok(v)) {
        Ok(())
    } else {
        Err(Refuse)
    }
}

#[inline]
fn check_i(c: &Checks, v: i64) -> R<()> {
    if c.ints.iter().all(|b| b.ok(v)) && c.longs.as_ref().is_none_or(|s| s.contains(&v)) {
        Ok(())
    } else {
        Err(Refuse)
    }
}

struct Ctx {
    utc: *mut ffi::PyObject,
    empty: *mut ffi::PyObject,
    dict_name: *mut ffi::PyObject,
    fields_set_name: *mut ffi::PyObject,
    extra_name: *mut ffi::PyObject,
    private_name: *mut ffi::PyObject,
}

impl Ctx {
    unsafe fn string(&self, c: &Checks, s: &[u8]) -> R<Own> {
        if let Some(set) = &c.strs {
            let found = set.iter().find(|(b, _)| b.as_slice() == s).ok_or(Refuse)?;
            let o = found.1.as_ptr();
            ffi::Py_INCREF(o);
            let o = Own(o);
            if c.has_len() && !c.len_ok(ffi::PyUnicode_GetLength(o.0)) {
                return Err(Refuse);
            }
            return Ok(o);
        }
        let o = Own::new(ffi::PyUnicode_DecodeUTF8(
            s.as_ptr() as *const c_char,
            s.len() as ffi::Py_ssize_t,
            c"strict".as_ptr(),
        ))?;
        if c.has_len() && !c.len_ok(ffi::PyUnicode_GetLength(o.0)) {
            return Err(Refuse);
        }
        Ok(o)
    }

    unsafe fn millis(&self, ms: i64) -> R<Own> {
        let days = ms.div_euclid(MS_PER_DAY);
        if !(MIN_DAY..=MAX_DAY).contains(&days) {
            return Err(Refuse);
        }
        let rem = ms.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = rem / 1000;
        let api = &*ffi::PyDateTimeAPI();
        Own::new((api.DateTime_FromDateAndTime)(
            y as c_int,
            m as c_int,
            d as c_int,
            (secs / 3600) as c_int,
            (secs / 60 % 60) as c_int,
            (secs % 60) as c_int,
            ((rem % 1000) * 1000) as c_int,
            self.utc,
            api.DateTimeType,
        ))
    }

    unsafe fn read(&self, node: &Node, c: &mut Cur) -> R<Own> {
        match node {
            Node::Str(k) => {
                let s = c.slice()?;
                self.string(k, s)
            }
            Node::Long(k) => {
                let v = c.long()?;
                check_i(k, v)?;
                Own::new(ffi::PyLong_FromLongLong(v))
            }
            Node::Double(k) => {
                let v = c.double()?;
                check_f(k, v)?;
                Own::new(ffi::PyFloat_FromDouble(v))
            }
            Node::Boolean => match c.byte()? {
                0 => Ok(Own::new_ref(ffi::Py_False())),
                1 => Ok(Own::new_ref(ffi::Py_True())),
                _ => Err(Refuse),
            },
            Node::Bytes(k) => {
                let s = c.slice()?;
                if !k.len_ok(s.len() as isize) {
                    return Err(Refuse);
                }
                Own::new(ffi::PyBytes_FromStringAndSize(
                    s.as_ptr() as *const c_char,
                    s.len() as ffi::Py_ssize_t,
                ))
            }
            Node::Millis => {
                let v = c.long()?;
                self.millis(v)
            }
            Node::MillisInt(lo, hi) => {
                let v = c.long()?;
                if v < *lo || v > *hi {
                    return Err(Refuse);
                }
                Own::new(ffi::PyLong_FromLongLong(v))
            }
            Node::Optional(inner) => match c.byte()? {
                0 => Ok(Own::new_ref(ffi::Py_None())),
                2 => self.read(inner, c),
                _ => Err(Refuse),
            },
            Node::Array(item, k) => {
                let list = Own::new(ffi::PyList_New(0))?;
                if let Node::Double(ik) = &**item {
                    loop {
                        let n = c.count()?;
                        if n == 0 {
                            break;
                        }
                        for _ in 0..n {
                            let v = c.double()?;
                            check_f(ik, v)?;
                            let o = Own::new(ffi::PyFloat_FromDouble(v))?;
                            if ffi::PyList_Append(list.0, o.0) != 0 {
                                ffi::PyErr_Clear();
                                return Err(Refuse);
                            }
                        }
                    }
                } else {
                    loop {
                        let n = c.count()?;
                        if n == 0 {
                            break;
                        }
                        for _ in 0..n {
                            let o = self.read(item, c)?;
                            if ffi::PyList_Append(list.0, o.0) != 0 {
                                ffi::PyErr_Clear();
                                return Err(Refuse);
                            }
                        }
                    }
                }
                if k.has_len() && !k.len_ok(ffi::PyList_GET_SIZE(list.0)) {
                    return Err(Refuse);
                }
                Ok(list)
            }
            Node::Map(value, k) => {
                let dict = Own::new(ffi::PyDict_New())?;
                let keys = Checks::default();
                loop {
                    let n = c.count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let s = c.slice()?;
                        let key = self.string(&keys, s)?;
                        let v = self.read(value, c)?;
                        if ffi::PyDict_SetItem(dict.0, key.0, v.0) != 0 {
                            ffi::PyErr_Clear();
                            return Err(Refuse);
                        }
                    }
                }
                if k.has_len() && !k.len_ok(ffi::PyDict_Size(dict.0)) {
                    return Err(Refuse);
                }
                Ok(dict)
            }
            Node::Record(rec) => self.record(rec, c),
        }
    }

    /// What `model_construct` builds, without its default handling: every field is present.
    unsafe fn record(&self, rec: &Record, c: &mut Cur) -> R<Own> {
        let model = rec.model.as_ref().ok_or(Refuse)?.as_ptr();
        let dict = Own::new(ffi::PyDict_New())?;
        for (name, node) in rec.names.iter().zip(&rec.nodes) {
            let v = self.read(node, c)?;
            if ffi::PyDict_SetItem(dict.0, name.as_ptr(), v.0) != 0 {
                ffi::PyErr_Clear();
                return Err(Refuse);
            }
        }
        let new = ffi::PyBaseObject_Type.tp_new.ok_or(Refuse)?;
        let obj = Own::new(new(
            model as *mut ffi::PyTypeObject,
            self.empty,
            ptr::null_mut(),
        ))?;
        let fields_set = Own::new(ffi::PySet_New(rec.all.as_ptr()))?;
        if ffi::PyObject_GenericSetAttr(obj.0, self.dict_name, dict.0) != 0
            || ffi::PyObject_GenericSetAttr(obj.0, self.fields_set_name, fields_set.0) != 0
            || ffi::PyObject_GenericSetAttr(obj.0, self.extra_name, ffi::Py_None()) != 0
            || ffi::PyObject_GenericSetAttr(obj.0, self.private_name, ffi::Py_None()) != 0
        {
            ffi::PyErr_Clear();
            return Err(Refuse);
        }
        Ok(obj)
    }

    /// Rows mode: check every field, keep the picked ones in `slots`.
    unsafe fn fill(&self, rec: &Record, c: &mut Cur, slots: &mut [Option<Own>]) -> R<()> {
        for (node, pick) in rec.nodes.iter().zip(&rec.picks) {
            match (pick, node) {
                (Some((slot, as_tuple)), _) => {
                    let mut v = self.read_plain(node, c)?;
                    if *as_tuple {
                        v = Own::new(ffi::PySequence_Tuple(v.0))?;
                    }
                    *slots.get_mut(*slot).ok_or(Refuse)? = Some(v);
                }
                (None, Node::Record(inner)) => self.fill(inner, c, slots)?,
                (None, _) => self.skip(node, c)?,
            }
        }
        Ok(())
    }

    /// A picked value in rows mode (records have no model there).
    unsafe fn read_plain(&self, node: &Node, c: &mut Cur) -> R<Own> {
        match node {
            Node::Record(_) => Err(Refuse),
            Node::Optional(inner) if matches!(**inner, Node::Record(_)) => Err(Refuse),
            _ => self.read(node, c),
        }
    }

    /// Check a value without building it (rows mode); refuses whenever unsure.
    unsafe fn skip(&self, node: &Node, c: &mut Cur) -> R<()> {
        match node {
            Node::Str(k) => {
                let s = c.slice()?;
                let text = std::str::from_utf8(s).map_err(|_| Refuse)?;
                if let Some(set) = &k.strs {
                    set.iter().find(|(b, _)| b.as_slice() == s).ok_or(Refuse)?;
                }
                if k.has_len() && !k.len_ok(text.chars().count() as isize) {
                    return Err(Refuse);
                }
                Ok(())
            }
            Node::Long(k) => check_i(k, c.long()?),
            Node::Double(k) => check_f(k, c.double()?),
            Node::Boolean => match c.byte()? {
                0 | 1 => Ok(()),
                _ => Err(Refuse),
            },
            Node::Bytes(k) => {
                let n = c.slice()?.len() as isize;
                if k.len_ok(n) {
                    Ok(())
                } else {
                    Err(Refuse)
                }
            }
            Node::Millis => {
                let days = c.long()?.div_euclid(MS_PER_DAY);
                if (MIN_DAY..=MAX_DAY).contains(&days) {
                    Ok(())
                } else {
                    Err(Refuse)
                }
            }
            Node::MillisInt(lo, hi) => {
                let v = c.long()?;
                if v < *lo || v > *hi {
                    Err(Refuse)
                } else {
                    Ok(())
                }
            }
            Node::Optional(inner) => match c.byte()? {
                0 => Ok(()),
                2 => self.skip(inner, c),
                _ => Err(Refuse),
            },
            Node::Array(item, k) => {
                let mut total: u64 = 0;
                loop {
                    let n = c.count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        self.skip(item, c)?;
                    }
                    total += n;
                }
                if k.has_len() && !k.len_ok(total as isize) {
                    return Err(Refuse);
                }
                Ok(())
            }
            Node::Map(value, k) => {
                if k.has_len() {
                    return Err(Refuse); // duplicate keys: the length is the dict's
                }
                loop {
                    let n = c.count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        std::str::from_utf8(c.slice()?).map_err(|_| Refuse)?;
                        self.skip(value, c)?;
                    }
                }
                Ok(())
            }
            Node::Record(rec) => {
                for node in &rec.nodes {
                    self.skip(node, c)?;
                }
                Ok(())
            }
        }
    }
}

impl Own {
    #[inline]
    unsafe fn new_ref(p: *mut ffi::PyObject) -> Own {
        ffi::Py_INCREF(p);
        Own(p)
    }
}

// writing ---------------------------------------------------------------------------------

pyo3::import_exception!(labeltrail.exceptions, SerializationError);

fn fail(msg: String) -> PyErr {
    SerializationError::new_err(msg)
}

#[inline]
fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7F {
        out.push((z as u8 & 0x7F) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

struct Writer<'py> {
    py: Python<'py>,
    ctx: &'py Ctx,
    millis_of: &'py Py<PyAny>,
}

impl<'py> Writer<'py> {
    fn err(&self) -> PyErr {
        PyErr::fetch(self.py)
    }

    unsafe fn string(&self, out: &mut Vec<u8>, o: *mut ffi::PyObject) -> PyResult<()> {
        if ffi::PyUnicode_Check(o) == 0 {
            let t = Bound::from_borrowed_ptr(self.py, o).get_type();
            return Err(fail(format!("expected a str, got {}", t.name()?)));
        }
        let mut n: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
        if p.is_null() {
            let e = self.err();
            return Err(fail(format!("cannot encode a string: {e}")));
        }
        put_long(out, n as i64);
        out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, n as usize));
        Ok(())
    }

    unsafe fn long(&self, out: &mut Vec<u8>, o: *mut ffi::PyObject) -> PyResult<()> {
        if ffi::PyLong_Check(o) == 0 {
            let t = Bound::from_borrowed_ptr(self.py, o).get_type();
            return Err(fail(format!("expected an int, got {}", t.name()?)));
        }
        let mut overflow: c_int = 0;
        let v = ffi::PyLong_AsLongLongAndOverflow(o, &mut overflow);
        if overflow != 0 {
            let b = Bound::from_borrowed_ptr(self.py, o);
            return Err(fail(format!("{b} does not fit an Avro long")));
        }
        if v == -1 && !ffi::PyErr_Occurred().is_null() {
            return Err(self.err());
        }
        put_long(out, v);
        Ok(())
    }

    unsafe fn double(&self, out: &mut Vec<u8>, o: *mut ffi::PyObject) -> PyResult<()> {
        let v = ffi::PyFloat_AsDouble(o);
        if v == -1.0 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return Err(fail("required argument is not a float".into()));
        }
        out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    unsafe fn truth(&self, o: *mut ffi::PyObject) -> PyResult<bool> {
        match ffi::PyObject_IsTrue(o) {
            -1 => Err(self.err()),
            t => Ok(t == 1),
        }
    }

    unsafe fn len(&self, o: *mut ffi::PyObject) -> PyResult<isize> {
        let n = ffi::PyObject_Length(o);
        if n < 0 {
            Err(self.err())
        } else {
            Ok(n)
        }
    }

    unsafe fn write(&self, node: &Node, out: &mut Vec<u8>, o: *mut ffi::PyObject) -> PyResult<()> {
        match node {
            Node::Str(_) => self.string(out, o),
            Node::Long(_) => self.long(out, o),
            Node::Double(_) => self.double(out, o),
            Node::Boolean => {
                out.push(u8::from(self.truth(o)?));
                Ok(())
            }
            Node::Bytes(_) => {
                if ffi::PyBytes_Check(o) == 0 {
                    return Err(fail("expected bytes".into()));
                }
                let n = ffi::PyBytes_Size(o);
                put_long(out, n as i64);
                let p = ffi::PyBytes_AsString(o) as *const u8;
                out.extend_from_slice(std::slice::from_raw_parts(p, n as usize));
                Ok(())
            }
            Node::Millis => {
                if ffi::PyDateTime_CheckExact(o) != 0
                    && ffi::PyDateTime_DATE_GET_TZINFO(o) == self.ctx.utc
                {
                    let days = days_from_civil(
                        ffi::PyDateTime_GET_YEAR(o) as i64,
                        ffi::PyDateTime_GET_MONTH(o) as i64,
                        ffi::PyDateTime_GET_DAY(o) as i64,
                    );
                    let secs = ffi::PyDateTime_DATE_GET_HOUR(o) as i64 * 3600
                        + ffi::PyDateTime_DATE_GET_MINUTE(o) as i64 * 60
                        + ffi::PyDateTime_DATE_GET_SECOND(o) as i64;
                    let ms = days * MS_PER_DAY
                        + secs * 1000
                        + ffi::PyDateTime_DATE_GET_MICROSECOND(o) as i64 / 1000;
                    put_long(out, ms);
                    Ok(())
                } else {
                    // Anything else (another timezone, a naive or odd value): Python decides.
                    let ms = self
                        .millis_of
                        .bind(self.py)
                        .call1((Bound::from_borrowed_ptr(self.py, o),))?;
                    self.long(out, ms.as_ptr())
                }
            }
            Node::MillisInt(..) => self.long(out, o),
            Node::Optional(inner) => {
                if o == ffi::Py_None() {
                    out.push(0);
                    Ok(())
                } else {
                    out.push(2);
                    self.write(inner, out, o)
                }
            }
            Node::Array(item, _) => {
                if ffi::PyList_CheckExact(o) != 0 {
                    let n = ffi::PyList_GET_SIZE(o);
                    if n > 0 {
                        put_long(out, n as i64);
                        for i in 0..n {
                            // The list may not change under us: no Python code runs for the
                            // primitive kinds, and a record's writer only reads.
                            let it = ffi::PyList_GET_ITEM(o, i);
                            ffi::Py_INCREF(it);
                            let it = Own(it);
                            self.write(item, out, it.0)?;
                            if ffi::PyList_GET_SIZE(o) != n {
                                return Err(fail("list changed while encoding".into()));
                            }
                        }
                    }
                } else if self.truth(o)? {
                    put_long(out, self.len(o)? as i64);
                    let items = Bound::from_borrowed_ptr(self.py, o);
                    for it in items.try_iter()? {
                        self.write(item, out, it?.as_ptr())?;
                    }
                }
                out.push(0);
                Ok(())
            }
            Node::Map(value, _) => {
                if ffi::PyDict_CheckExact(o) != 0 {
                    let n = ffi::PyDict_Size(o);
                    if n > 0 {
                        put_long(out, n as i64);
                        let d = Bound::from_borrowed_ptr(self.py, o);
                        let d = d.cast::<PyDict>()?;
                        for (k, v) in d.iter() {
                            self.string(out, k.as_ptr())?;
                            self.write(value, out, v.as_ptr())?;
                        }
                    }
                } else if self.truth(o)? {
                    put_long(out, self.len(o)? as i64);
                    let items = Bound::from_borrowed_ptr(self.py, o).call_method0("items")?;
                    for kv in items.try_iter()? {
                        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv?.extract()?;
                        self.string(out, k.as_ptr())?;
                        self.write(value, out, v.as_ptr())?;
                    }
                }
                out.push(0);
                Ok(())
            }
            Node::Record(rec) => self.record(rec, out, o),
        }
    }

    unsafe fn record(
        &self,
        rec: &Record,
        out: &mut Vec<u8>,
        o: *mut ffi::PyObject,
    ) -> PyResult<()> {
        let d = ffi::PyObject_GetAttr(o, self.ctx.dict_name);
        if d.is_null() {
            return Err(self.err());
        }
        let d = Own(d);
        let exact = ffi::PyDict_CheckExact(d.0) != 0;
        for (name, node) in rec.names.iter().zip(&rec.nodes) {
            let v = if exact {
                let v = ffi::PyDict_GetItemWithError(d.0, name.as_ptr());
                if v.is_null() {
                    if ffi::PyErr_Occurred().is_null() {
                        ffi::PyErr_SetObject(ffi::PyExc_KeyError, name.as_ptr());
                    }
                    return Err(self.err());
                }
                ffi::Py_INCREF(v);
                Own(v)
            } else {
                let v = ffi::PyObject_GetItem(d.0, name.as_ptr());
                if v.is_null() {
                    return Err(self.err());
                }
                Own(v)
            };
            self.write(node, out, v.0)?;
        }
        Ok(())
    }
}

// Python classes --------------------------------------------------------------------------

fn context(py: Python<'_>, utc: &Bound<'_, PyAny>) -> PyResult<Ctx> {
    unsafe {
        ffi::PyDateTime_IMPORT();
        if ffi::PyDateTimeAPI().is_null() {
            return Err(PyErr::fetch(py));
        }
    }
    let name = |s: &str| {
        pyo3::types::PyString::intern(py, s)
            .into_any()
            .unbind()
            .into_ptr()
    };
    Ok(Ctx {
        utc: utc.clone().unbind().into_ptr(),
        empty: PyTuple::empty(py).unbind().into_ptr(),
        dict_name: name("__dict__"),
        fields_set_name: name("__pydantic_fields_set__"),
        extra_name: name("__pydantic_extra__"),
        private_name: name("__pydantic_private__"),
    })
}

fn body<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    Ok(data.cast::<PyBytes>()?.as_bytes())
}

/// The reader and writer of one record type, from its plan.
#[pyclass(frozen, module = "labeltrail_native")]
struct Codec {
    node: Node,
    ctx: Ctx,
    millis_of: Py<PyAny>,
}

// The raw pointers in Ctx are owned references to immortal-ish objects, only used with the GIL.
unsafe impl Send for Codec {}
unsafe impl Sync for Codec {}
unsafe impl Send for Rows {}
unsafe impl Sync for Rows {}

#[pymethods]
impl Codec {
    /// `Codec(plan, utc, millis_of)`: `plan` a ("record", ...) node; `utc` the tzinfo of the
    /// datetimes built; `millis_of(value)` the milliseconds of a datetime that is not an exact
    /// UTC datetime (or the error for it).
    #[new]
    fn new(
        py: Python<'_>,
        plan: &Bound<'_, PyAny>,
        utc: &Bound<'_, PyAny>,
        millis_of: Py<PyAny>,
    ) -> PyResult<Self> {
        let node = parse_node(plan)?;
        if !matches!(node, Node::Record(_)) {
            return Err(unsupported("the plan is not a record".into()));
        }
        Ok(Codec {
            node,
            ctx: context(py, utc)?,
            millis_of,
        })
    }

    /// `(value, end)` read from `data` at `pos`; raises `Refused` for what it does not accept.
    fn read<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        pos: usize,
    ) -> PyResult<(Py<PyAny>, usize)> {
        let owned;
        let d = match body(data) {
            Ok(d) => d,
            Err(_) => {
                owned = PyBytes::new(py, &data.extract::<Vec<u8>>()?);
                owned.as_bytes()
            }
        };
        let mut c = Cur { d, p: pos };
        match unsafe { self.ctx.read(&self.node, &mut c) } {
            Ok(o) => Ok((
                unsafe { Bound::from_owned_ptr(py, o.into_ptr()).unbind() },
                c.p,
            )),
            Err(Refuse) => Err(Refused::new_err(())),
        }
    }

    /// Append the encoding of `obj` to the bytearray `buf`.
    fn write(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyByteArray>,
        obj: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut out = Vec::with_capacity(256);
        let w = Writer {
            py,
            ctx: &self.ctx,
            millis_of: &self.millis_of,
        };
        unsafe { w.write(&self.node, &mut out, obj.as_ptr()) }?;
        let start = buf.len();
        buf.resize(start + out.len())?;
        unsafe { buf.as_bytes_mut()[start..].copy_from_slice(&out) };
        Ok(())
    }

    /// `prefix` + the encoding of `obj`, as bytes.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        prefix: &[u8],
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(prefix);
        let w = Writer {
            py,
            ctx: &self.ctx,
            millis_of: &self.millis_of,
        };
        unsafe { w.write(&self.node, &mut out, obj.as_ptr()) }?;
        Ok(PyBytes::new(py, &out))
    }
}

/// Batch reader of single-object messages into row tuples, for chosen writer fingerprints.
#[pyclass(frozen, module = "labeltrail_native")]
struct Rows {
    kinds: Vec<([u8; 8], Record, Py<PyAny>, usize)>,
    magic: [u8; 2],
    ctx: Ctx,
}

#[pymethods]
impl Rows {
    /// `Rows(magic, kinds, utc)`: kinds a list of (fingerprint, record plan with picks,
    /// row type, row width).
    #[new]
    fn new(
        py: Python<'_>,
        magic: &[u8],
        kinds: &Bound<'_, PyAny>,
        utc: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let mut out = Vec::new();
        for k in kinds.try_iter()? {
            let (fp, plan, row, width): (Vec<u8>, Bound<'_, PyTuple>, Py<PyAny>, usize) =
                k?.extract()?;
            let fp: [u8; 8] = fp
                .try_into()
                .map_err(|_| unsupported("fingerprint".into()))?;
            let rec = parse_record(&plan)?;
            let mut seen = vec![false; width];
            for (slot, _) in rec.picks.iter().flatten().chain(nested_picks(&rec).iter()) {
                *seen
                    .get_mut(*slot)
                    .ok_or_else(|| unsupported("slot".into()))? = true;
            }
            if seen.iter().any(|s| !s) {
                return Err(unsupported("every row slot needs a field".into()));
            }
            out.push((fp, rec, row, width));
        }
        let magic: [u8; 2] = magic.try_into().map_err(|_| unsupported("magic".into()))?;
        Ok(Rows {
            kinds: out,
            magic,
            ctx: context(py, utc)?,
        })
    }

    /// One row per value, or None where the fast path does not vouch for the value.
    fn rows(&self, py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let seq =
            unsafe { ffi::PySequence_Fast(values.as_ptr(), c"values must be a sequence".as_ptr()) };
        if seq.is_null() {
            return Err(PyErr::fetch(py));
        }
        let seq = Own(seq);
        let n = unsafe { ffi::PySequence_Fast_GET_SIZE(seq.0) };
        let out = unsafe { Own(ffi::PyList_New(n)) };
        for i in 0..n {
            let v = unsafe { ffi::PySequence_Fast_GET_ITEM(seq.0, i) };
            let row =
                unsafe { self.row(v) }.unwrap_or_else(|_| unsafe { Own::new_ref(ffi::Py_None()) });
            unsafe { ffi::PyList_SET_ITEM(out.0, i, row.into_ptr()) };
        }
        Ok(unsafe { Bound::from_owned_ptr(py, out.into_ptr()).unbind() })
    }
}

fn nested_picks(rec: &Record) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for node in &rec.nodes {
        if let Node::Record(inner) = node {
            out.extend(inner.picks.iter().flatten().copied());
            out.extend(nested_picks(inner));
        }
    }
    out
}

impl Rows {
    unsafe fn row(&self, v: *mut ffi::PyObject) -> R<Own> {
        if ffi::PyBytes_CheckExact(v) == 0 {
            return Err(Refuse);
        }
        let n = ffi::PyBytes_Size(v) as usize;
        let d = std::slice::from_raw_parts(ffi::PyBytes_AsString(v) as *const u8, n);
        if n < 10 || d[..2] != self.magic {
            return Err(Refuse);
        }
        let (_, rec, row, width) = self.kinds.iter().find(|k| k.0 == d[2..10]).ok_or(Refuse)?;
        let mut slots: Vec<Option<Own>> = (0..*width).map(|_| None).collect();
        let mut c = Cur { d, p: 10 };
        self.ctx.fill(rec, &mut c, &mut slots)?;
        if c.p != n {
            return Err(Refuse);
        }
        let t = Own::new(ffi::PyTuple_New(*width as ffi::Py_ssize_t))?;
        for (i, s) in slots.into_iter().enumerate() {
            ffi::PyTuple_SET_ITEM(t.0, i as ffi::Py_ssize_t, s.ok_or(Refuse)?.into_ptr());
        }
        // tuple.__new__(row, items), as a NamedTuple's own __new__ does.
        let args = Own::new(ffi::PyTuple_Pack(1, t.0))?;
        let new = ffi::PyTuple_Type.tp_new.ok_or(Refuse)?;
        Own::new(new(
            row.as_ptr() as *mut ffi::PyTypeObject,
            args.0,
            ptr::null_mut(),
        ))
    }
}

#[pymodule]
fn labeltrail_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("Refused", m.py().get_type::<Refused>())?;
    m.add_class::<Codec>()?;
    m.add_class::<Rows>()?;
    Ok(())
}
