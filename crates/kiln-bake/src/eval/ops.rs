//! Unary and binary operators.

use hcl_edit::expr::{BinaryOp, BinaryOperator, UnaryOp, UnaryOperator};

use super::Session;
use crate::error::BakeError;
use crate::value::Value;

impl<'s> Session<'s> {
    pub(super) fn unary(&self, op: &UnaryOp, value: Value) -> Result<Value, BakeError> {
        if let Value::Unknown = value {
            return Ok(Value::Unknown);
        }
        match op.operator.value() {
            UnaryOperator::Neg => value
                .as_number()
                .map(|n| Value::Number(-n))
                .ok_or_else(|| self.error_at(&op.expr, format!("Invalid operand; Unsuitable value for unary operand: number required, got {}.", value.type_name()))),
            UnaryOperator::Not => value
                .as_bool()
                .map(|b| Value::Bool(!b))
                .ok_or_else(|| self.error_at(&op.expr, format!("Invalid operand; Unsuitable value for unary operand: bool required, got {}.", value.type_name()))),
        }
    }

    pub(super) fn binary(&mut self, op: &BinaryOp) -> Result<Value, BakeError> {
        let operator = *op.operator.value();
        let lhs = self.eval(&op.lhs_expr)?;
        // && and || short-circuit like HCL does once the left side decides.
        if operator == BinaryOperator::And && lhs == Value::Bool(false) {
            return Ok(Value::Bool(false));
        }
        if operator == BinaryOperator::Or && lhs == Value::Bool(true) {
            return Ok(Value::Bool(true));
        }
        let rhs = self.eval(&op.rhs_expr)?;
        if matches!(lhs, Value::Unknown) || matches!(rhs, Value::Unknown) {
            return Ok(Value::Unknown);
        }
        use BinaryOperator::*;
        match operator {
            Eq => Ok(Value::Bool(values_equal(&lhs, &rhs))),
            NotEq => Ok(Value::Bool(!values_equal(&lhs, &rhs))),
            And | Or => {
                let l = self.bool_operand(&lhs, op, true)?;
                let r = self.bool_operand(&rhs, op, false)?;
                Ok(Value::Bool(if operator == And { l && r } else { l || r }))
            }
            Plus | Minus | Mul | Div | Mod | Less | LessEq | Greater | GreaterEq => {
                let l = self.number_operand(&lhs, op, true)?;
                let r = self.number_operand(&rhs, op, false)?;
                Ok(match operator {
                    Plus => Value::Number(l + r),
                    Minus => Value::Number(l - r),
                    Mul => Value::Number(l * r),
                    Div => {
                        if r == 0.0 {
                            return Err(self.error_at(
                                &op.rhs_expr,
                                "Operation failed; Error during operation: can't divide by zero.",
                            ));
                        }
                        Value::Number(l / r)
                    }
                    Mod => {
                        if r == 0.0 {
                            return Err(self.error_at(&op.rhs_expr, "Operation failed; Error during operation: can't use modulo by zero."));
                        }
                        Value::Number(l % r)
                    }
                    Less => Value::Bool(l < r),
                    LessEq => Value::Bool(l <= r),
                    Greater => Value::Bool(l > r),
                    _ => Value::Bool(l >= r),
                })
            }
        }
    }

    fn number_operand(&self, v: &Value, op: &BinaryOp, left: bool) -> Result<f64, BakeError> {
        v.as_number().ok_or_else(|| {
            let node = if left { &op.lhs_expr } else { &op.rhs_expr };
            self.error_at(
                node,
                format!("Invalid operand; Unsuitable value for {} operand: a number is required, got {}.", if left { "left" } else { "right" }, v.type_name()),
            )
        })
    }

    fn bool_operand(&self, v: &Value, op: &BinaryOp, left: bool) -> Result<bool, BakeError> {
        v.as_bool().ok_or_else(|| {
            let node = if left { &op.lhs_expr } else { &op.rhs_expr };
            self.error_at(
                node,
                format!(
                    "Invalid operand; Unsuitable value for {} operand: bool required, got {}.",
                    if left { "left" } else { "right" },
                    v.type_name()
                ),
            )
        })
    }
}

/// HCL equality: values of different types are never equal.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && values_equal(va, vb))
        }
        _ => a == b,
    }
}
