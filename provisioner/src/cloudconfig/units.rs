//! `coreos.units`: name, content, enable, runtime, mask, drop_ins, command.

use super::yaml::Node;
use super::{Ctx, join};
use crate::check;
use crate::intent;
use crate::plan::*;
use std::collections::HashSet;

const COMMANDS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "reload",
    "try-restart",
    "reload-or-restart",
    "reload-or-try-restart",
];

pub(crate) fn units(v: &Node, plan: &mut Plan, ctx: &mut Ctx) {
    let Some(items) = ctx.seq(v, "coreos.units") else {
        return;
    };
    let mut commands: Vec<(String, String)> = Vec::new();
    // Unit names already in the plan (from keys handled earlier, then these units).
    let mut taken: HashSet<String> = plan.units.iter().map(|u| u.name.clone()).collect();
    for (i, it) in items.iter().enumerate() {
        let p = format!("coreos.units[{i}]");
        let Some(m) = ctx.map(it, &p) else { continue };
        let mut name = None;
        let mut unit = UnitPlan {
            name: String::new(),
            kind: UnitKind::Systemd,
            contents: None,
            enabled: None,
            mask: false,
            dropins: Vec::new(),
        };
        let mut command = None;
        for (key, kn, v) in ctx.entries(m, &p) {
            let kp = join(&p, &key);
            match key.as_str() {
                "name" => {
                    if let Some(n) = ctx.string(v, &kp) {
                        match check::unit_name(&n) {
                            Ok(()) => name = Some(n),
                            Err(e) => ctx.err(v, &kp, e),
                        }
                    }
                }
                "content" => {
                    if let Some(c) = ctx.string(v, &kp) {
                        if let Err(e) = check::unit_syntax(&c) {
                            ctx.err(v, &kp, e);
                        }
                        unit.contents = Some(c);
                    }
                }
                // coreos-cloudinit only ever enabled; `enable: false` left the unit alone.
                "enable" => {
                    if ctx.boolean(v, &kp) == Some(true) {
                        unit.enabled = Some(true);
                    }
                }
                "mask" => unit.mask = ctx.boolean(v, &kp).unwrap_or(false),
                "runtime" => {
                    if ctx.boolean(v, &kp) == Some(true) {
                        ctx.warn(
                            kn,
                            &kp,
                            "runtime: true is installed persistently (under /etc): first-boot provisioning runs once, so a runtime unit would vanish after the first reboot",
                        );
                    }
                }
                "command" => {
                    if let Some(c) = ctx.string(v, &kp) {
                        if COMMANDS.contains(&c.as_str()) {
                            command = Some(c);
                        } else {
                            ctx.err(
                                v,
                                &kp,
                                format!("command {c:?} is not one of {}", COMMANDS.join(", ")),
                            );
                        }
                    }
                }
                "drop_ins" | "drop-ins" => {
                    let Some(ds) = ctx.seq(v, &kp) else { continue };
                    for (j, d) in ds.iter().enumerate() {
                        let dp = format!("{kp}[{j}]");
                        let Some(dm) = ctx.map(d, &dp) else { continue };
                        let (mut dn, mut dc) = (None, String::new());
                        for (dk, dkn, dv) in ctx.entries(dm, &dp) {
                            let dkp = join(&dp, &dk);
                            match dk.as_str() {
                                "name" => {
                                    if let Some(n) = ctx.string(dv, &dkp) {
                                        match check::dropin_name(&n) {
                                            Ok(()) => dn = Some(n),
                                            Err(e) => ctx.err(dv, &dkp, e),
                                        }
                                    }
                                }
                                "content" => {
                                    if let Some(c) = ctx.string(dv, &dkp) {
                                        if let Err(e) = check::unit_syntax(&c) {
                                            ctx.err(dv, &dkp, e);
                                        }
                                        dc = c;
                                    }
                                }
                                _ => ctx.warn(
                                    dkn,
                                    &dkp,
                                    format!("unknown key {dk:?} in a drop-in; it is ignored"),
                                ),
                            }
                        }
                        match dn {
                            Some(n) if unit.dropins.iter().any(|x| x.name == n) => {
                                ctx.err(d, &dp, format!("duplicate drop-in {n:?}"))
                            }
                            Some(n) => unit.dropins.push(DropinPlan {
                                name: n,
                                contents: dc,
                            }),
                            None => ctx.err(d, &dp, "drop-in has no name"),
                        }
                    }
                }
                _ => ctx.warn(
                    kn,
                    &kp,
                    format!("unknown key {key:?} in a unit; it is ignored"),
                ),
            }
        }
        let Some(name) = name else {
            ctx.err(it, &p, "unit has no name");
            continue;
        };
        if taken.contains(&name) {
            ctx.err(it, &p, format!("duplicate unit {name:?}"));
            continue;
        }
        if check::is_network_unit(&name) {
            unit.kind = UnitKind::Networkd;
            if unit.enabled.is_some() || unit.mask || command.is_some() {
                ctx.err(
                    it,
                    &p,
                    "networkd files cannot be enabled, masked or given a command",
                );
                continue;
            }
        }
        unit.name = name.clone();
        taken.insert(name.clone());
        if let Some(c) = command {
            commands.push((name, c));
        }
        plan.units.push(unit);
    }
    if !commands.is_empty() {
        let mut s = String::from(
            "#!/bin/sh\n# coreos.units[].command, run once after the system is up.\nset -e\n",
        );
        for (u, c) in &commands {
            s.push_str(&format!(
                "systemctl --no-block {c} {}\n",
                intent::sh_quote(u)
            ));
        }
        intent::firstboot_script(plan, 10, "unit-commands", s.into_bytes());
    }
}
