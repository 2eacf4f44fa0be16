//! String templates: interpolation and `%{ if }` / `%{ for }` directives.

use hcl_edit::template::{Directive, Element, HeredocTemplate, StringTemplate, Template};

use super::Session;
use crate::error::BakeError;
use crate::value::Value;

/// Result of rendering part of a template; `None` when a piece was unknown.
type Rendered = Option<String>;

impl<'s> Session<'s> {
    pub(super) fn eval_string_template(&mut self, t: &StringTemplate) -> Result<Value, BakeError> {
        // A template made of one interpolation yields the raw value, unconverted.
        if let Some(Element::Interpolation(interp)) = t.as_single_element() {
            return self.eval(&interp.expr);
        }
        Ok(self
            .render(t, false, false)?
            .map_or(Value::Unknown, Value::String))
    }

    pub(super) fn eval_heredoc(&mut self, h: &HeredocTemplate) -> Result<Value, BakeError> {
        Ok(self
            .render(&h.template, false, false)?
            .map_or(Value::Unknown, Value::String))
    }

    fn render(
        &mut self,
        t: &Template,
        strip_first: bool,
        strip_last: bool,
    ) -> Result<Rendered, BakeError> {
        let elements: Vec<&Element> = t.iter().collect();
        let mut out = String::new();
        let mut unknown = false;
        for (i, element) in elements.iter().enumerate() {
            match element {
                Element::Literal(lit) => {
                    let mut s: &str = lit.value();
                    let strip_before = if i == 0 {
                        strip_first
                    } else {
                        strips_following(elements[i - 1])
                    };
                    let strip_after = match elements.get(i + 1) {
                        Some(next) => strips_preceding(next),
                        None => strip_last,
                    };
                    if strip_before {
                        s = s.trim_start();
                    }
                    if strip_after {
                        s = s.trim_end();
                    }
                    out.push_str(s);
                }
                Element::Interpolation(interp) => {
                    let value = self.eval(&interp.expr)?;
                    match self.template_string(value, &interp.expr)? {
                        Some(s) => out.push_str(&s),
                        None => unknown = true,
                    }
                }
                Element::Directive(directive) => match directive.as_ref() {
                    Directive::If(d) => {
                        let cond = self.eval(&d.if_expr.cond_expr)?;
                        let branch = match cond.as_bool() {
                            Some(b) => b,
                            None if matches!(cond, Value::Unknown) => {
                                unknown = true;
                                continue;
                            }
                            None => {
                                return Err(self.error_at(
                                    &d.if_expr.cond_expr,
                                    format!(
                                        "Invalid 'if' condition; bool required, got {}.",
                                        cond.type_name()
                                    ),
                                ));
                            }
                        };
                        let rendered = if branch {
                            let close_strip = match &d.else_expr {
                                Some(e) => e.strip.strip_start(),
                                None => d.endif_expr.strip.strip_start(),
                            };
                            self.render(
                                &d.if_expr.template,
                                d.if_expr.strip.strip_end(),
                                close_strip,
                            )?
                        } else if let Some(e) = &d.else_expr {
                            self.render(
                                &e.template,
                                e.strip.strip_end(),
                                d.endif_expr.strip.strip_start(),
                            )?
                        } else {
                            Some(String::new())
                        };
                        match rendered {
                            Some(s) => out.push_str(&s),
                            None => unknown = true,
                        }
                    }
                    Directive::For(d) => {
                        let collection = self.eval(&d.for_expr.collection_expr)?;
                        let pairs: Vec<(Value, Value)> = match collection.into_iteration_pairs() {
                            Ok(pairs) => pairs,
                            Err(Value::Unknown) => {
                                unknown = true;
                                continue;
                            }
                            Err(other) => {
                                return Err(self.error_at(
                                    &d.for_expr.collection_expr,
                                    format!("Iteration over non-iterable value; a {} cannot be iterated in a template 'for'.", other.type_name()),
                                ));
                            }
                        };
                        for (k, v) in pairs {
                            let mark = self.locals.len();
                            if let Some(kv) = &d.for_expr.key_var {
                                self.locals.push((kv.value().to_string(), k));
                            }
                            self.locals
                                .push((d.for_expr.value_var.value().to_string(), v));
                            let rendered = self.render(
                                &d.for_expr.template,
                                d.for_expr.strip.strip_end(),
                                d.endfor_expr.strip.strip_start(),
                            );
                            self.locals.truncate(mark);
                            match rendered? {
                                Some(s) => out.push_str(&s),
                                None => unknown = true,
                            }
                        }
                    }
                },
            }
        }
        Ok(if unknown { None } else { Some(out) })
    }

    fn template_string(
        &self,
        value: Value,
        node: &hcl_edit::expr::Expression,
    ) -> Result<Rendered, BakeError> {
        match value {
            Value::Unknown => Ok(None),
            Value::Null => Err(self.error_at(
                node,
                "Invalid template interpolation value; The expression result is null. Cannot include a null value in a string template.",
            )),
            other => match other.as_string() {
                Some(s) => Ok(Some(s)),
                None => Err(self.error_at(
                    node,
                    format!("Invalid template interpolation value; Cannot include the given value in a string template: string required, got {}.", other.type_name()),
                )),
            },
        }
    }
}

/// Whether this element's opening marker carries `~` (strips the literal before it).
fn strips_preceding(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_start(),
        Element::Directive(d) => match d.as_ref() {
            Directive::If(d) => d.if_expr.strip.strip_start(),
            Directive::For(d) => d.for_expr.strip.strip_start(),
        },
    }
}

/// Whether this element's closing marker carries `~` (strips the literal after it).
fn strips_following(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_end(),
        Element::Directive(d) => match d.as_ref() {
            Directive::If(d) => d.endif_expr.strip.strip_end(),
            Directive::For(d) => d.endfor_expr.strip.strip_end(),
        },
    }
}
