//! IPv4 CIDR helpers (`cidrhost`, `cidrnetmask`, `cidrsubnet`, `cidrsubnets`).

use super::{FnResult, arg_num, arg_str, arity};
use crate::value::Value;
use std::net::Ipv4Addr;

pub fn call(name: &str, args: &[Value]) -> Option<FnResult> {
    Some(match name {
        "cidrhost" => arity(args, 2).and_then(|_| {
            let (base, bits) = parse_cidr(&arg_str(args, 0)?)?;
            let host = arg_num(args, 1)? as i64;
            let size = 1i64 << (32 - bits);
            let offset = if host < 0 { size + host } else { host };
            if offset < 0 || offset >= size {
                return Err(format!(
                    "prefix of {bits} does not accommodate a host numbered {host}"
                ));
            }
            Ok(Value::String(
                Ipv4Addr::from(base + offset as u32).to_string(),
            ))
        }),
        "cidrnetmask" => arity(args, 1).and_then(|_| {
            let (_, bits) = parse_cidr(&arg_str(args, 0)?)?;
            Ok(Value::String(Ipv4Addr::from(mask(bits)).to_string()))
        }),
        "cidrsubnet" => arity(args, 3).and_then(|_| {
            let (base, bits) = parse_cidr(&arg_str(args, 0)?)?;
            let newbits = arg_num(args, 1)? as u32;
            let num = arg_num(args, 2)? as u64;
            subnet(base, bits, newbits, num).map(Value::String)
        }),
        "cidrsubnets" => {
            if args.is_empty() {
                Err("cidrsubnets requires a prefix".into())
            } else {
                (|| {
                    let (base, bits) = parse_cidr(&arg_str(args, 0)?)?;
                    let mut next: u64 = base as u64;
                    let mut out = Vec::new();
                    for i in 1..args.len() {
                        let newbits = arg_num(args, i)? as u32;
                        let len = bits.saturating_add(newbits);
                        if len > 32 {
                            return Err("not enough remaining address space".to_string());
                        }
                        let step = 1u64 << (32 - len);
                        let start = next.div_ceil(step) * step;
                        if start + step > base as u64 + (1u64 << (32 - bits)) {
                            return Err("not enough remaining address space".to_string());
                        }
                        out.push(Value::String(format!(
                            "{}/{len}",
                            Ipv4Addr::from(start as u32)
                        )));
                        next = start + step;
                    }
                    Ok(Value::List(out))
                })()
            }
        }
        _ => return None,
    })
}

fn mask(bits: u32) -> u32 {
    if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    }
}

fn parse_cidr(s: &str) -> Result<(u32, u32), String> {
    let (addr, bits) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR address {s:?}"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("invalid CIDR address {s:?}"))?;
    let bits: u32 = bits
        .parse()
        .map_err(|_| format!("invalid CIDR prefix {s:?}"))?;
    if bits > 32 {
        return Err(format!("invalid CIDR prefix {s:?}"));
    }
    Ok((u32::from(addr) & mask(bits), bits))
}

fn subnet(base: u32, bits: u32, newbits: u32, num: u64) -> Result<String, String> {
    let len = bits.saturating_add(newbits);
    if len > 32 {
        return Err(format!(
            "insufficient address space to extend prefix of {bits} by {newbits}"
        ));
    }
    if newbits < 64 && num >= 1u64 << newbits {
        return Err(format!(
            "prefix extension of {newbits} does not accommodate a subnet numbered {num}"
        ));
    }
    let addr = base as u64 | (num << (32 - len));
    Ok(format!("{}/{len}", Ipv4Addr::from(addr as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_functions() {
        assert_eq!(
            call(
                "cidrhost",
                &[Value::str("10.12.112.0/20"), Value::Number(16.0)]
            )
            .unwrap(),
            Ok(Value::str("10.12.112.16"))
        );
        assert_eq!(
            call("cidrnetmask", &[Value::str("172.16.0.0/12")]).unwrap(),
            Ok(Value::str("255.240.0.0"))
        );
        assert_eq!(
            call(
                "cidrsubnet",
                &[
                    Value::str("172.16.0.0/12"),
                    Value::Number(4.0),
                    Value::Number(2.0)
                ]
            )
            .unwrap(),
            Ok(Value::str("172.18.0.0/16"))
        );
    }
}
