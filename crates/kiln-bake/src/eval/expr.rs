//! Expression evaluation.

use std::collections::BTreeMap;

use hcl_edit::expr::{Expression, ForExpr, FuncCall, ObjectKey, Traversal, TraversalOperator};

use super::Session;
use crate::error::{BakeError, DiagKind};
use crate::value::Value;

impl<'s> Session<'s> {
    pub fn eval(&mut self, expr: &Expression) -> Result<Value, BakeError> {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(0.0))),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.eval(item)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(object) => {
                let mut out = BTreeMap::new();
                for (key, value) in object.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.value().to_string(),
                        ObjectKey::Expression(key_expr) => match self.object_key(key_expr)? {
                            Some(k) => k,
                            None => return Ok(Value::Unknown),
                        },
                    };
                    let value = self.eval(value.expr())?;
                    out.insert(key, value);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.eval_string_template(t),
            Expression::HeredocTemplate(h) => self.eval_heredoc(h),
            Expression::Parenthesis(p) => self.eval(p.inner()),
            Expression::Variable(v) => self.eval_variable(v.value().as_str(), expr),
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr)?;
                match cond {
                    Value::Unknown => Ok(Value::Unknown),
                    Value::Bool(true) => self.eval(&c.true_expr),
                    Value::Bool(false) => self.eval(&c.false_expr),
                    other => match other.as_bool() {
                        Some(true) => self.eval(&c.true_expr),
                        Some(false) => self.eval(&c.false_expr),
                        None => Err(self.error_at(
                            &c.cond_expr,
                            format!(
                                "Incorrect condition type; The condition expression must be of type bool, got {}",
                                other.type_name()
                            ),
                        )),
                    },
                }
            }
            Expression::FuncCall(call) => self.eval_call(call),
            Expression::Traversal(t) => self.eval_traversal(t),
            Expression::UnaryOp(op) => {
                let value = self.eval(&op.expr)?;
                self.unary(op, value)
            }
            Expression::BinaryOp(op) => self.binary(op),
            Expression::ForExpr(f) => self.eval_for(f),
        }
    }

    fn object_key(&mut self, key_expr: &Expression) -> Result<Option<String>, BakeError> {
        // A bare identifier in parentheses-free key position is a literal name.
        if let Expression::Variable(v) = key_expr {
            return Ok(Some(v.value().to_string()));
        }
        let key = self.eval(key_expr)?;
        if let Value::Unknown = key {
            return Ok(None);
        }
        match key.as_string() {
            Some(k) => Ok(Some(k)),
            None => Err(self.error_at(
                key_expr,
                format!(
                    "Incorrect key type; Can't use this value as a key: string required, got {}",
                    key.type_name()
                ),
            )),
        }
    }

    fn eval_variable(&mut self, name: &str, node: &Expression) -> Result<Value, BakeError> {
        if let Some(v) = self.lookup_local(name) {
            return Ok(v.clone());
        }
        let pos = self.pos_of(node);
        match self.lookup_global(name, &pos)? {
            Some(v) => Ok(v),
            None => {
                self.push_diag(pos, DiagKind::UnknownVariable(name.to_string()));
                Ok(Value::Unknown)
            }
        }
    }

    fn eval_traversal(&mut self, t: &Traversal) -> Result<Value, BakeError> {
        let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
        // `target.NAME.ATTR` and `group.NAME.ATTR` reach into other blocks.
        if let Expression::Variable(root) = &t.expr {
            let root_name = root.value().as_str();
            let is_block_root = (root_name == "target" || root_name == "group")
                && self.lookup_local(root_name).is_none()
                && self.blocks.contains_key(root_name);
            if let (true, Some(TraversalOperator::GetAttr(block))) = (is_block_root, ops.first()) {
                let block = block.value().to_string();
                let pos = self.pos_of(t);
                if let Some(TraversalOperator::GetAttr(attr)) = ops.get(1) {
                    let attr = attr.value().to_string();
                    let value = self.block_attr(root_name, &block, &attr, &pos)?;
                    return self.apply_ops(value, &ops[2..], t);
                }
                let value = self.block_object(root_name, &block, &pos)?;
                return self.apply_ops(value, &ops[1..], t);
            }
        }
        let base = self.eval(&t.expr)?;
        self.apply_ops(base, &ops, t)
    }

    fn apply_ops(
        &mut self,
        mut value: Value,
        ops: &[&TraversalOperator],
        node: &Traversal,
    ) -> Result<Value, BakeError> {
        let mut i = 0;
        while i < ops.len() {
            if let Value::Unknown = value {
                return Ok(Value::Unknown);
            }
            match ops[i] {
                TraversalOperator::GetAttr(name) => {
                    value = self.get_attr(value, name.value().as_str(), node)?;
                }
                TraversalOperator::Index(index_expr) => {
                    let index = self.eval(index_expr)?;
                    value = self.index(value, &index, node)?;
                }
                TraversalOperator::LegacyIndex(n) => {
                    value = self.index(value, &Value::Number(*n.value() as f64), node)?;
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let full = matches!(ops[i], TraversalOperator::FullSplat(_));
                    let rest_len = if full {
                        ops.len() - i - 1
                    } else {
                        ops[i + 1..]
                            .iter()
                            .take_while(|o| matches!(o, TraversalOperator::GetAttr(_)))
                            .count()
                    };
                    let rest = &ops[i + 1..i + 1 + rest_len];
                    let items = match value {
                        Value::Null => Vec::new(),
                        Value::List(items) => items,
                        other => vec![other],
                    };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.apply_ops(item, rest, node)?);
                    }
                    value = Value::List(out);
                    i += rest_len;
                }
            }
            i += 1;
        }
        Ok(value)
    }

    fn get_attr(&self, value: Value, name: &str, node: &Traversal) -> Result<Value, BakeError> {
        match value {
            Value::Object(mut map) => match map.remove(name) {
                Some(v) => Ok(v),
                None => Err(self.error_at(
                    node,
                    format!("Unsupported attribute; This object does not have an attribute named \"{name}\"."),
                )),
            },
            Value::Null => Err(self.error_at(
                node,
                "Attempt to get attribute from null value; This value is null, so it does not have any attributes.",
            )),
            other => Err(self.error_at(
                node,
                format!("Unsupported attribute; Can't access attributes on a primitive-typed value ({}).", other.type_name()),
            )),
        }
    }

    pub(crate) fn index(
        &self,
        value: Value,
        index: &Value,
        node: &impl hcl_edit::Span,
    ) -> Result<Value, BakeError> {
        if let Value::Unknown = index {
            return Ok(Value::Unknown);
        }
        match value {
            Value::List(mut items) => {
                let Some(n) = index.as_number() else {
                    return Err(self.error_at(node, "Invalid index; The given key does not identify an element in this collection value: a number is required."));
                };
                if n < 0.0 || n.fract() != 0.0 || n as usize >= items.len() {
                    return Err(self.error_at(
                        node,
                        "Invalid index; The given key does not identify an element in this collection value.",
                    ));
                }
                Ok(items.swap_remove(n as usize))
            }
            Value::Object(mut map) => {
                let Some(key) = index.as_string() else {
                    return Err(self.error_at(node, "Invalid index; a string key is required."));
                };
                map.remove(&key).ok_or_else(|| {
                    self.error_at(
                        node,
                        format!("Invalid index; The given key does not identify an element in this collection value: \"{key}\"."),
                    )
                })
            }
            Value::Null => Err(self.error_at(
                node,
                "Attempt to index null value; This value is null, so it does not have any indices.",
            )),
            other => Err(self.error_at(
                node,
                format!(
                    "Invalid index; This value does not have any indices ({}).",
                    other.type_name()
                ),
            )),
        }
    }

    fn eval_for(&mut self, f: &ForExpr) -> Result<Value, BakeError> {
        let collection = self.eval(&f.intro.collection_expr)?;
        let pairs: Vec<(Value, Value)> = match collection.into_iteration_pairs() {
            Ok(pairs) => pairs,
            Err(Value::Unknown) => return Ok(Value::Unknown),
            Err(Value::Null) => {
                return Err(self.error_at(&f.intro.collection_expr, "Iteration over null value; A null value cannot be used as the collection in a 'for' expression."));
            }
            Err(other) => {
                return Err(self.error_at(
                    &f.intro.collection_expr,
                    format!("Iteration over non-iterable value; A value of type {} cannot be used as the collection in a 'for' expression.", other.type_name()),
                ));
            }
        };
        let key_var = f.intro.key_var.as_ref().map(|k| k.value().to_string());
        let value_var = f.intro.value_var.value().to_string();
        let mut list = Vec::new();
        let mut object: BTreeMap<String, Value> = BTreeMap::new();
        let mut unknown = false;
        for (k, v) in pairs {
            let mark = self.locals.len();
            if let Some(kv) = &key_var {
                self.locals.push((kv.clone(), k));
            }
            self.locals.push((value_var.clone(), v));
            let result = self.for_step(f, &mut list, &mut object, &mut unknown);
            self.locals.truncate(mark);
            result?;
        }
        if unknown {
            return Ok(Value::Unknown);
        }
        if f.key_expr.is_some() {
            Ok(Value::Object(object))
        } else {
            Ok(Value::List(list))
        }
    }

    fn for_step(
        &mut self,
        f: &ForExpr,
        list: &mut Vec<Value>,
        object: &mut BTreeMap<String, Value>,
        unknown: &mut bool,
    ) -> Result<(), BakeError> {
        if let Some(cond) = &f.cond {
            match self.eval(&cond.expr)? {
                Value::Bool(true) => {}
                Value::Bool(false) => return Ok(()),
                Value::Unknown => {
                    *unknown = true;
                    return Ok(());
                }
                other => {
                    return Err(self.error_at(
                        &cond.expr,
                        format!("Invalid 'for' condition; The 'if' clause value is invalid: bool required, got {}.", other.type_name()),
                    ));
                }
            }
        }
        match &f.key_expr {
            None => list.push(self.eval(&f.value_expr)?),
            Some(key_expr) => {
                let key = self.eval(key_expr)?;
                let Some(key) = key.as_string() else {
                    if let Value::Unknown = key {
                        *unknown = true;
                        return Ok(());
                    }
                    return Err(self.error_at(
                        key_expr,
                        "Invalid object key; Key expression in 'for' expression must be a string.",
                    ));
                };
                let value = self.eval(&f.value_expr)?;
                if f.grouping {
                    if let Value::List(items) =
                        object.entry(key).or_insert_with(|| Value::List(Vec::new()))
                    {
                        items.push(value);
                    }
                } else {
                    match object.entry(key) {
                        std::collections::btree_map::Entry::Occupied(e) => {
                            let key = e.key();
                            return Err(self.error_at(
                                key_expr,
                                format!("Duplicate object key; Two different items produced the key \"{key}\" in this 'for' expression. If duplicates are expected, use the ellipsis (...) after the value expression to enable grouping by key."),
                            ));
                        }
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(value);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn eval_call(&mut self, call: &FuncCall) -> Result<Value, BakeError> {
        let name = call.name.name.value().as_str();
        // try() and can() must see failures of their arguments, so they
        // evaluate lazily.
        if name == "try" || name == "can" {
            return self.eval_try(call, name == "can");
        }
        // convert()'s second argument is a type expression, not a value.
        if name == "convert" && call.args.len() == 2 && !self.funcs.contains_key(name) {
            let mut args = call.args.iter();
            let (value_expr, type_expr) = (args.next(), args.next());
            if let (Some(value_expr), Some(type_expr)) = (value_expr, type_expr) {
                let value = self.eval(value_expr)?;
                let ty = self.parse_type(type_expr)?;
                return crate::value::convert(&value, &ty).map_err(|e| {
                    self.error_at(
                        call,
                        format!(
                            "Invalid function argument; Invalid value for \"value\" parameter: {e}."
                        ),
                    )
                });
            }
        }
        let mut args = Vec::with_capacity(call.args.len());
        let count = call.args.len();
        for (i, arg) in call.args.iter().enumerate() {
            let value = self.eval(arg)?;
            if i + 1 == count && call.args.expand_final() {
                match value {
                    Value::List(items) => args.extend(items),
                    Value::Unknown => return Ok(Value::Unknown),
                    _ => return Err(self.error_at(arg, "Invalid expanding argument value; The expanding argument (indicated by ...) must be of a tuple, list, or set type.")),
                }
            } else {
                args.push(value);
            }
        }
        if self.funcs.contains_key(name) {
            return self.call_user_func(name, args, call);
        }
        if !crate::funcs::exists(name) {
            let pos = self.pos_of(call);
            self.push_diag(pos, DiagKind::UnknownFunction(name.to_string()));
            return Ok(Value::Unknown);
        }
        if args.iter().any(Value::is_unknown) {
            return Ok(Value::Unknown);
        }
        crate::funcs::call(name, args).map_err(|msg| {
            self.error_at(
                call,
                format!("Error in function call; Call to function \"{name}\" failed: {msg}."),
            )
        })
    }

    fn eval_try(&mut self, call: &FuncCall, is_can: bool) -> Result<Value, BakeError> {
        for arg in call.args.iter() {
            let before = self.diags.len();
            let result = self.eval(arg);
            let clean = self.diags.len() == before;
            self.diags.truncate(before);
            match result {
                Ok(v) if clean && !v.is_unknown() => {
                    return Ok(if is_can { Value::Bool(true) } else { v });
                }
                _ => {
                    if is_can {
                        return Ok(Value::Bool(false));
                    }
                }
            }
        }
        if is_can {
            return Ok(Value::Bool(false));
        }
        Err(self.error_at(
            call,
            "Error in function call; Call to function \"try\" failed: no expression succeeded.",
        ))
    }

    fn call_user_func(
        &mut self,
        name: &str,
        args: Vec<Value>,
        call: &FuncCall,
    ) -> Result<Value, BakeError> {
        let func = self.funcs[name].clone();
        if args.len() < func.params.len()
            || (func.variadic.is_none() && args.len() > func.params.len())
        {
            return Err(self.error_at(
                call,
                format!(
                    "Invalid function call; Function \"{name}\" expects {} argument(s), got {}.",
                    func.params.len(),
                    args.len()
                ),
            ));
        }
        if self.func_depth > 64 {
            return Err(self.error_at(call, format!("Function \"{name}\" recurses too deeply.")));
        }
        let mut locals = Vec::new();
        let mut rest = args.into_iter();
        for p in &func.params {
            locals.push((p.clone(), rest.next().unwrap_or_default()));
        }
        if let Some(v) = &func.variadic {
            locals.push((v.clone(), Value::List(rest.collect())));
        }
        self.func_depth += 1;
        let out = self.in_scope(func.file, locals, |s| s.eval(func.result));
        self.func_depth -= 1;
        out
    }
}
