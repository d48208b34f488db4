//! Yosys statistics (`stat -json`) read into resource counts, per target.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Resources of a synthesized design.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// LUTs in total: logic LUTs plus LUTs used as memory or shift registers (Vivado's "Slice
    /// LUTs"); for iCE40 the `SB_LUT4` count; 0 for the generic target.
    pub luts: u64,
    /// Logic LUTs by input count (`LUT1`..`LUT6`, `SB_LUT4`).
    pub luts_by_size: BTreeMap<String, u64>,
    /// Flip-flops.
    pub ffs: u64,
    /// Carry-chain cells (`CARRY4`/`CARRY8`, `SB_CARRY`).
    pub carry: u64,
    /// Block RAM primitives by type.
    pub bram_blocks: BTreeMap<String, u64>,
    /// Capacity of the block RAM primitives used, in bits.
    pub bram_bits: u64,
    /// Capacity of the LUT RAM primitives used, in bits.
    pub lutram_bits: u64,
    /// Every cell type and its count.
    pub cells: BTreeMap<String, u64>,
    /// Yosys's CMOS transistor estimate (generic target only).
    pub transistors: Option<u64>,
}

#[derive(Deserialize)]
struct Stat {
    design: StatModule,
}

#[derive(Deserialize)]
struct StatModule {
    num_cells_by_type: BTreeMap<String, u64>,
    #[serde(default)]
    estimated_num_transistors: Option<String>,
}

/// Bits of a block RAM primitive.
fn bram_capacity(cell: &str) -> Option<u64> {
    Some(match cell {
        "RAMB18E1" | "RAMB18E2" => 18 * 1024,
        "RAMB36E1" | "RAMB36E2" => 36 * 1024,
        "SB_RAM40_4K" => 4096,
        "SB_SPRAM256KA" => 256 * 1024,
        _ => return None,
    })
}

/// LUTs a LUT RAM or shift-register primitive occupies, and its storage bits.
fn lut_memory(cell: &str) -> Option<(u64, u64)> {
    Some(match cell {
        "RAM32X1S" => (1, 32),
        "RAM64X1S" => (1, 64),
        "RAM128X1S" => (2, 128),
        "RAM256X1S" => (4, 256),
        "RAM32X1D" => (2, 32),
        "RAM64X1D" => (2, 64),
        "RAM128X1D" => (4, 128),
        "RAM32M" => (4, 192),
        "RAM64M" => (4, 192),
        "RAM32M16" => (8, 448),
        "RAM64M8" => (8, 448),
        "SRL16E" | "SRLC16E" | "SRLC32E" => (1, 0),
        _ => return None,
    })
}

/// Parses the text `stat -json` wrote (the first JSON value in it) into resources.
pub fn parse_stat(path: &Path, text: &str) -> Result<Resources> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Stat>();
    let stat = match values.next() {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return Err(Error::bad_file(
                path,
                format!("not Yosys `stat -json` output ({e})"),
            ))
        }
        None => return Err(Error::bad_file(path, "empty Yosys statistics")),
    };
    let cells = stat.design.num_cells_by_type;
    let mut r = Resources {
        transistors: stat
            .design
            .estimated_num_transistors
            .as_deref()
            .and_then(|t| t.trim_end_matches('+').parse().ok()),
        ..Resources::default()
    };
    for (cell, &n) in &cells {
        let c = cell.as_str();
        if c.starts_with("LUT") && c.len() == 4 || c == "SB_LUT4" {
            r.luts_by_size.insert(c.to_string(), n);
            r.luts += n;
        } else if let Some((luts, bits)) = lut_memory(c) {
            r.luts += luts * n;
            r.lutram_bits += bits * n;
        } else if let Some(bits) = bram_capacity(c) {
            r.bram_blocks.insert(c.to_string(), n);
            r.bram_bits += bits * n;
        } else if c.starts_with("CARRY") || c == "SB_CARRY" {
            r.carry += n;
        } else if is_flip_flop(c) {
            r.ffs += n;
        }
    }
    r.cells = cells;
    Ok(r)
}

fn is_flip_flop(cell: &str) -> bool {
    // Xilinx FDRE/FDSE/FDCE/FDPE, iCE40 SB_DFF*, Yosys's internal $_DFF_*, $_SDFF*_, $_DFFE_*.
    matches!(cell, "FDRE" | "FDSE" | "FDCE" | "FDPE")
        || cell.starts_with("SB_DFF")
        || (cell.starts_with("$_") && cell.contains("DFF"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xilinx_statistics_are_counted_by_kind() {
        let text = r#"{ "creator": "Yosys", "modules": {},
          "design": { "num_cells": 9, "num_cells_by_type": {
            "BUFG": 1, "CARRY4": 3, "FDRE": 10, "FDSE": 2, "LUT2": 4, "LUT6": 5,
            "RAM32M": 2, "RAMB18E1": 3, "RAMB36E1": 1, "MUXF7": 2 } } }
          trailing text from tee"#;
        let r = parse_stat(Path::new("s.json"), text).unwrap();
        assert_eq!(r.luts, 4 + 5 + 2 * 4);
        assert_eq!(r.ffs, 12);
        assert_eq!(r.carry, 3);
        assert_eq!(r.bram_bits, 3 * 18432 + 36864);
        assert_eq!(r.lutram_bits, 2 * 192);
        assert_eq!(r.luts_by_size["LUT6"], 5);
        assert_eq!(r.transistors, None);
    }

    #[test]
    fn generic_statistics_give_transistors_and_flip_flops() {
        let text = r#"{ "design": { "num_cells_by_type": { "$_DFF_P_": 9, "$_NAND_": 23,
          "$_SDFFE_PP0P_": 2 }, "estimated_num_transistors": "480+" } }"#;
        let r = parse_stat(Path::new("s.json"), text).unwrap();
        assert_eq!(r.ffs, 11);
        assert_eq!(r.transistors, Some(480));
        assert_eq!(r.luts, 0);
    }

    #[test]
    fn garbage_is_a_bad_file() {
        let e = parse_stat(Path::new("s.json"), "ERROR: nothing").unwrap_err();
        assert!(
            e.to_string().contains("not Yosys `stat -json` output"),
            "{e}"
        );
    }
}
