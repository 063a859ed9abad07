//! A stream's schema and how it evolves (PROTOCOL.md 8.13, "Schema"): appends may add
//! fields, leave fields out and widen numeric types; the stream's schema is the union,
//! recorded in its chunk log, and every chunk is read as that schema. A value that no
//! column type can hold with its column's values is a conflict, refused.
//!
//! The rules, as the table formats define them (Delta Lake's `mergeSchema`, Iceberg's
//! type promotion, Arrow's permissive `unify_schemas`), narrowed to conversions that keep
//! every value:
//! - a field the stream lacks is added, nullable (earlier rows read as null);
//! - a field an append lacks reads as null for its rows (the column becomes nullable);
//! - `null` (a column of missing values) unifies with anything;
//! - integers widen to the smallest integer type holding both (`int32` + `int64` =
//!   `int64`, `uint8` + `int8` = `int16`); `uint64` with a signed type, and an integer
//!   with a float, become a float (`float64` unless a `float32` holds both exactly);
//! - floats widen to the wider float; `utf8`/`binary` to their large forms; timestamps
//!   and durations of one time zone to the finer unit; dictionaries to the wider key;
//!   lists and structs field by field (a struct may gain fields);
//! - anything else (a string into a number column, a bool into an integer, two time
//!   zones) is a conflict.
//!
//! Chunks are never rewritten to a widened type: [`conform`] casts them when read.

use std::sync::Arc;

pub use crate::error::FieldConflict;
use crate::error::{Error, Result};
use arrow_array::cast::AsArray;
use arrow_array::{new_null_array, Array, ArrayRef, GenericListArray, OffsetSizeTrait, RecordBatch, StructArray};
use arrow_schema::{DataType, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

fn int_width(t: &DataType) -> Option<(bool, u8)> {
    Some(match t {
        DataType::Int8 => (true, 8),
        DataType::Int16 => (true, 16),
        DataType::Int32 => (true, 32),
        DataType::Int64 => (true, 64),
        DataType::UInt8 => (false, 8),
        DataType::UInt16 => (false, 16),
        DataType::UInt32 => (false, 32),
        DataType::UInt64 => (false, 64),
        _ => return None,
    })
}

fn int_type(signed: bool, bits: u8) -> DataType {
    match (signed, bits) {
        (true, 8) => DataType::Int8,
        (true, 16) => DataType::Int16,
        (true, 32) => DataType::Int32,
        (true, _) => DataType::Int64,
        (false, 8) => DataType::UInt8,
        (false, 16) => DataType::UInt16,
        (false, 32) => DataType::UInt32,
        (false, _) => DataType::UInt64,
    }
}

/// Bits of mantissa (+1) a float holds integers exactly up to.
fn float_bits(t: &DataType) -> Option<u8> {
    match t {
        DataType::Float16 => Some(11),
        DataType::Float32 => Some(24),
        DataType::Float64 => Some(53),
        _ => None,
    }
}

fn float_type(bits: u8) -> DataType {
    match bits {
        0..=11 => DataType::Float16,
        12..=24 => DataType::Float32,
        _ => DataType::Float64,
    }
}

fn unit_rank(u: &TimeUnit) -> u8 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

fn finer(a: &TimeUnit, b: &TimeUnit) -> TimeUnit {
    if unit_rank(a) >= unit_rank(b) {
        *a
    } else {
        *b
    }
}

/// The type a column of type `column` becomes to also hold values of type `value`, or
/// `None` when no type holds both without changing a value (see the module docs).
pub fn widen(column: &DataType, value: &DataType) -> Option<DataType> {
    use DataType::*;
    if column == value {
        return Some(column.clone());
    }
    match (column, value) {
        (Null, t) | (t, Null) => Some(t.clone()),
        (a, b) if int_width(a).is_some() && int_width(b).is_some() => {
            let ((sa, wa), (sb, wb)) = (int_width(a)?, int_width(b)?);
            if sa == sb {
                return Some(int_type(sa, wa.max(wb)));
            }
            let (ws, wu) = if sa { (wa, wb) } else { (wb, wa) };
            if ws > wu {
                Some(int_type(true, ws))
            } else if wu < 64 {
                Some(int_type(true, wu * 2))
            } else {
                Some(Float64)
            }
        }
        (a, b) if float_bits(a).is_some() && float_bits(b).is_some() => {
            Some(float_type(float_bits(a)?.max(float_bits(b)?)))
        }
        (i, f) | (f, i) if int_width(i).is_some() && float_bits(f).is_some() => {
            let (signed, w) = int_width(i)?;
            // An integer of w bits needs w (unsigned) or w-1 (signed) bits of mantissa.
            // (int64 and uint64 go to float64, which holds integers exactly up to 2^53).
            let need = if signed { w - 1 } else { w };
            Some(float_type(float_bits(f)?.max(need)))
        }
        (Utf8, LargeUtf8) | (LargeUtf8, Utf8) => Some(LargeUtf8),
        (Binary, LargeBinary) | (LargeBinary, Binary) => Some(LargeBinary),
        (Timestamp(ua, za), Timestamp(ub, zb)) if za == zb => Some(Timestamp(finer(ua, ub), za.clone())),
        (Duration(ua), Duration(ub)) => Some(Duration(finer(ua, ub))),
        (Dictionary(ka, va), Dictionary(kb, vb)) if va == vb => {
            let k = widen(ka, kb)?;
            // A dictionary key is a signed or unsigned integer, never a float.
            int_width(&k)?;
            Some(Dictionary(Box::new(k), va.clone()))
        }
        (List(fa), List(fb)) => Some(List(widen_field(fa, fb)?)),
        (LargeList(fa), LargeList(fb)) => Some(LargeList(widen_field(fa, fb)?)),
        (List(fa), LargeList(fb)) | (LargeList(fa), List(fb)) => Some(LargeList(widen_field(fa, fb)?)),
        (Struct(fa), Struct(fb)) => Some(Struct(widen_fields(fa, fb)?)),
        _ => None,
    }
}

/// A list's item field widened (keeping the column's item name).
fn widen_field(column: &FieldRef, value: &FieldRef) -> Option<FieldRef> {
    let t = widen(column.data_type(), value.data_type())?;
    if t == *column.data_type() && (column.is_nullable() || !value.is_nullable()) {
        return Some(column.clone());
    }
    Some(Arc::new(column.as_ref().clone().with_data_type(t).with_nullable(column.is_nullable() || value.is_nullable())))
}

/// A struct's fields widened: the column's fields in order, then the value's new ones;
/// a field either side lacks becomes nullable.
fn widen_fields(column: &Fields, value: &Fields) -> Option<Fields> {
    let mut out: Vec<FieldRef> = Vec::with_capacity(column.len());
    for c in column.iter() {
        match value.find(c.name()) {
            Some((_, v)) => out.push(widen_field(c, v)?),
            None if c.is_nullable() => out.push(c.clone()),
            None => out.push(Arc::new(c.as_ref().clone().with_nullable(true))),
        }
    }
    for v in value.iter() {
        if column.find(v.name()).is_none() {
            out.push(Arc::new(v.as_ref().clone().with_nullable(true)));
        }
    }
    Some(Fields::from(out))
}

/// Where two types first disagree (a struct's inner field), for the error message.
fn conflict_path(name: &str, column: &DataType, value: &DataType) -> (String, String, String) {
    if let (DataType::Struct(cf), DataType::Struct(vf)) = (column, value) {
        for c in cf.iter() {
            if let Some((_, v)) = vf.find(c.name()) {
                if widen(c.data_type(), v.data_type()).is_none() {
                    return conflict_path(&format!("{name}.{}", c.name()), c.data_type(), v.data_type());
                }
            }
        }
    }
    (name.to_string(), value.to_string(), column.to_string())
}

/// The stream's schema after an append whose schema is `incoming`: `Ok(None)` when
/// `current` already holds it unchanged (every field there, of a type that holds the
/// append's values, nullable where the append lacks it), `Ok(Some(new))` when it grows
/// or widens, `Err(conflicts)` when a field cannot be unified. The new schema keeps the
/// current fields' order and metadata; new fields follow in the append's order.
pub fn unify(
    current: Option<&SchemaRef>,
    incoming: &Schema,
) -> std::result::Result<Option<SchemaRef>, Vec<FieldConflict>> {
    let Some(current) = current else {
        return Ok(Some(Arc::new(incoming.clone())));
    };
    let mut changed = false;
    let mut conflicts = Vec::new();
    let mut fields: Vec<FieldRef> = Vec::with_capacity(current.fields().len());
    for c in current.fields() {
        match incoming.fields().find(c.name()) {
            Some((_, v)) => match widen(c.data_type(), v.data_type()) {
                None => {
                    let (field, value_type, column_type) = conflict_path(c.name(), c.data_type(), v.data_type());
                    conflicts.push(FieldConflict { field, value_type, column_type, part: 0 });
                    fields.push(c.clone());
                }
                Some(t) => {
                    let nullable = c.is_nullable() || v.is_nullable();
                    if t != *c.data_type() || nullable != c.is_nullable() {
                        changed = true;
                        fields.push(Arc::new(c.as_ref().clone().with_data_type(t).with_nullable(nullable)));
                    } else {
                        fields.push(c.clone());
                    }
                }
            },
            None => {
                if !c.is_nullable() {
                    changed = true;
                    fields.push(Arc::new(c.as_ref().clone().with_nullable(true)));
                } else {
                    fields.push(c.clone());
                }
            }
        }
    }
    for v in incoming.fields() {
        if current.fields().find(v.name()).is_none() {
            changed = true;
            fields.push(Arc::new(v.as_ref().clone().with_nullable(true)));
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(Arc::new(Schema::new_with_metadata(fields, current.metadata().clone()))))
}

/// True when a chunk of schema `chunk` is read as `target` without a conversion (the
/// same fields, names and types, in the same order).
pub fn same_fields(chunk: &Schema, target: &Schema) -> bool {
    chunk.fields().len() == target.fields().len()
        && chunk
            .fields()
            .iter()
            .zip(target.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

/// `array` as type `target`: a column of an older (narrower) chunk read as the stream's
/// widened type. Structs and lists are conformed field by field (a struct's missing
/// fields are null); other types are cast, failing rather than turning a value into
/// null.
pub fn conform_array(array: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    match (array.data_type(), target) {
        (DataType::Null, t) => Ok(new_null_array(t, array.len())),
        (DataType::Struct(_), DataType::Struct(tf)) => {
            let s = array.as_struct();
            let mut columns = Vec::with_capacity(tf.len());
            for f in tf.iter() {
                columns.push(match s.column_by_name(f.name()) {
                    Some(c) => conform_array(c, f.data_type())?,
                    None => new_null_array(f.data_type(), s.len()),
                });
            }
            Ok(Arc::new(StructArray::try_new(tf.clone(), columns, s.nulls().cloned())?))
        }
        (DataType::List(_), DataType::List(tf)) => conform_list::<i32, i32>(array.as_list::<i32>(), tf),
        (DataType::LargeList(_), DataType::LargeList(tf)) => conform_list::<i64, i64>(array.as_list::<i64>(), tf),
        (DataType::List(_), DataType::LargeList(tf)) => conform_list::<i32, i64>(array.as_list::<i32>(), tf),
        _ => {
            let opts = arrow_cast::CastOptions { safe: false, ..Default::default() };
            Ok(arrow_cast::cast_with_options(array, target, &opts)?)
        }
    }
}

fn conform_list<I: OffsetSizeTrait, O: OffsetSizeTrait>(
    list: &GenericListArray<I>,
    item: &FieldRef,
) -> Result<ArrayRef> {
    let values = conform_array(list.values(), item.data_type())?;
    let offsets: Vec<O> = list.offsets().iter().map(|o| O::usize_as(o.as_usize())).collect();
    let offsets = arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets));
    Ok(Arc::new(GenericListArray::<O>::try_new(item.clone(), offsets, values, list.nulls().cloned())?))
}

/// `batch` read as the stream's schema `target`: its columns by name, converted where
/// the stream widened them, and all-null columns for the fields it lacks. Columns whose
/// type already matches are kept as they are (no copy).
pub fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    if Arc::ptr_eq(&batch.schema(), target) {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        columns.push(match schema.index_of(f.name()) {
            Ok(i) => conform_array(batch.column(i), f.data_type())?,
            Err(_) => new_null_array(f.data_type(), batch.num_rows()),
        });
    }
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(target.clone(), columns, &opts)?)
}

/// Several tables (parts) of possibly different schemas as one: the union of their
/// fields, widened by [`widen`], each part conformed to it. `stream` is the stream's
/// schema: a part whose field conflicts with it (or with an earlier part) is reported
/// with the part's index, and nothing is merged.
pub fn merge(
    table: &str,
    stream: Option<&SchemaRef>,
    parts: &[(SchemaRef, Vec<RecordBatch>)],
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut conflicts = Vec::new();
    let mut merged: Option<SchemaRef> = None;
    for (i, (schema, _)) in parts.iter().enumerate() {
        if let Err(cs) = unify(stream, schema) {
            conflicts.extend(cs.into_iter().map(|c| FieldConflict { part: i, ..c }));
            continue;
        }
        match unify(merged.as_ref(), schema) {
            Ok(Some(s)) => merged = Some(s),
            Ok(None) => {}
            Err(cs) => conflicts.extend(cs.into_iter().map(|c| FieldConflict { part: i, ..c })),
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::SchemaConflict { table: table.into(), conflicts });
    }
    let Some(schema) = merged else { return Ok((Arc::new(Schema::empty()), Vec::new())) };
    if parts.len() == 1 {
        return Ok((schema, parts[0].1.clone()));
    }
    let mut batches = Vec::new();
    for (_, bs) in parts {
        for b in bs.iter().filter(|b| b.num_rows() > 0) {
            batches.push(conform(b, &schema)?);
        }
    }
    Ok((schema, batches))
}

/// The schema as a chunk line carries it: the Arrow IPC encapsulated `Schema` message
/// (continuation marker, length, flatbuffer, padding), base64 (standard alphabet).
pub fn encode(schema: &Schema) -> Result<String> {
    let opts = arrow_ipc::writer::IpcWriteOptions::default();
    let gen = arrow_ipc::writer::IpcDataGenerator::default();
    let mut tracker = arrow_ipc::writer::DictionaryTracker::new(false);
    let encoded = gen.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &opts);
    let mut out = Vec::new();
    arrow_ipc::writer::write_message(&mut out, encoded, &opts)?;
    Ok(base64_simd::STANDARD.encode_to_string(out))
}

/// [`encode`]'s inverse.
pub fn decode(text: &str) -> Result<SchemaRef> {
    let bytes = base64_simd::STANDARD
        .decode_to_vec(text)
        .map_err(|e| Error::InvalidArgument(format!("a chunk line's schema is not base64: {e}")))?;
    Ok(Arc::new(arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes)?))
}

/// `[a: int64, b: string]`, for messages.
pub fn describe(schema: &Schema) -> String {
    let cols: Vec<String> = schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    format!("[{}]", cols.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int32Array, Int64Array, StringArray};
    use arrow_schema::Field;
    use DataType::*;

    #[test]
    fn widening_keeps_every_value_or_refuses() {
        assert_eq!(widen(&Int32, &Int64), Some(Int64));
        assert_eq!(widen(&Int64, &Int32), Some(Int64));
        assert_eq!(widen(&UInt8, &Int8), Some(Int16));
        assert_eq!(widen(&UInt32, &Int64), Some(Int64));
        assert_eq!(widen(&UInt64, &Int64), Some(Float64));
        assert_eq!(widen(&Int64, &Float64), Some(Float64));
        assert_eq!(widen(&Int64, &Float32), Some(Float64), "float32 cannot hold every int64");
        assert_eq!(widen(&Int16, &Float32), Some(Float32));
        assert_eq!(widen(&Float32, &Float64), Some(Float64));
        assert_eq!(widen(&Null, &Utf8), Some(Utf8));
        assert_eq!(widen(&Utf8, &Null), Some(Utf8));
        assert_eq!(widen(&Utf8, &LargeUtf8), Some(LargeUtf8));
        assert_eq!(widen(&Int64, &Utf8), None);
        assert_eq!(widen(&Boolean, &Int64), None);
        assert_eq!(widen(&Utf8, &Binary), None);
        let ts = |u, z: Option<&str>| Timestamp(u, z.map(Into::into));
        assert_eq!(
            widen(&ts(TimeUnit::Microsecond, None), &ts(TimeUnit::Nanosecond, None)),
            Some(ts(TimeUnit::Nanosecond, None))
        );
        assert_eq!(widen(&ts(TimeUnit::Nanosecond, Some("UTC")), &ts(TimeUnit::Nanosecond, None)), None);
        let dict = |k: DataType| Dictionary(Box::new(k), Box::new(Utf8));
        assert_eq!(widen(&dict(Int8), &dict(Int16)), Some(dict(Int16)));
        let list = |t: DataType| List(Arc::new(Field::new("item", t, true)));
        assert_eq!(widen(&list(Int64), &list(Float64)), Some(list(Float64)));
        assert_eq!(widen(&list(Int64), &list(Utf8)), None);
        let st = |fs: Vec<(&str, DataType)>| Struct(fs.into_iter().map(|(n, t)| Field::new(n, t, true)).collect());
        assert_eq!(widen(&st(vec![("a", Int64)]), &st(vec![("b", Utf8)])), Some(st(vec![("a", Int64), ("b", Utf8)])));
        assert_eq!(widen(&st(vec![("a", Int64)]), &st(vec![("a", Utf8)])), None);
    }

    fn schema(fields: Vec<(&str, DataType, bool)>) -> SchemaRef {
        Arc::new(Schema::new(fields.into_iter().map(|(n, t, null)| Field::new(n, t, null)).collect::<Vec<_>>()))
    }

    #[test]
    fn unify_adds_widens_and_reports_each_conflict() {
        let cur = schema(vec![("a", Int64, false), ("b", Utf8, true)]);
        assert_eq!(unify(Some(&cur), &schema(vec![("a", Int64, false), ("b", Utf8, true)])), Ok(None));
        assert_eq!(
            unify(Some(&cur), &schema(vec![("b", Utf8, true), ("a", Int32, false)])),
            Ok(None),
            "order and narrower types: unchanged"
        );
        let grown = unify(Some(&cur), &schema(vec![("a", Float64, false), ("c", Utf8, false)])).unwrap().unwrap();
        assert_eq!(
            grown
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
                .collect::<Vec<_>>(),
            vec![("a", Float64, false), ("b", Utf8, true), ("c", Utf8, true)]
        );
        let dropped = unify(Some(&cur), &schema(vec![("b", Utf8, true)])).unwrap().unwrap();
        assert!(dropped.field(0).is_nullable(), "a field an append lacks becomes nullable");
        let err = unify(Some(&cur), &schema(vec![("a", Utf8, true), ("b", Int64, true)])).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(
            (err[0].field.as_str(), err[0].value_type.as_str(), err[0].column_type.as_str()),
            ("a", "Utf8", "Int64")
        );
    }

    #[test]
    fn conform_reads_an_old_chunk_as_the_widened_schema_without_copying_kept_columns() {
        let old = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            ("s", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef),
        ])
        .unwrap();
        let target = schema(vec![("a", Float64, true), ("s", Utf8, true), ("new", Int64, true)]);
        let c = conform(&old, &target).unwrap();
        assert_eq!(c.column(0).as_primitive::<arrow_array::types::Float64Type>(), &Float64Array::from(vec![1.0, 2.0]));
        assert_eq!(c.column(1).to_data().buffers()[1].as_ptr(), old.column(1).to_data().buffers()[1].as_ptr());
        assert_eq!(c.column(2).null_count(), 2);
        assert_eq!(c.column(2).as_primitive::<arrow_array::types::Int64Type>().len(), 2);
        let _ = Int64Array::from(vec![0]);
    }

    #[test]
    fn schemas_round_trip_through_their_log_form() {
        let mut s = Schema::new(vec![
            Field::new("a", Int64, false),
            Field::new_dictionary("d", Int8, Utf8, true),
            Field::new("t", Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true),
        ]);
        s.metadata.insert("pandas".into(), "{}".into());
        let back = decode(&encode(&s).unwrap()).unwrap();
        assert_eq!(*back, s);
        assert!(decode("not base64!").is_err());
    }
}
