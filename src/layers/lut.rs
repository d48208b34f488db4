//! The sparse truth-table layer (`lut`): `M` neurons, each reading `F <= 6` of the values it
//! receives, chosen by explicit index, and looking its output up in a truth table of `2^F`
//! bits. A binary neuron with at most six inputs is any boolean function of them, which is
//! what one LUT6 of an FPGA computes; a sparse XNOR-popcount threshold neuron is one such
//! table (`Lut::from_threshold`).

use super::{Hardware, MemoryImage, Produces, Semantics, Shape, Site, Values};
use crate::rtlgen::fold::{LayerFold, LayerShape};
use crate::synth::estimate::LayerEstimate;

/// The most inputs a neuron of a `lut` layer reads.
pub const MAX_FAN_IN: usize = 6;

/// A layer of sparse truth-table neurons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lut {
    /// Inputs each neuron reads, `1..=MAX_FAN_IN`.
    pub fan_in: usize,
    /// `neurons x fan_in` indices into the received values (packed order): input `i` of
    /// neuron `j` is `connections[j * fan_in + i]`.
    pub connections: Vec<u32>,
    /// Per neuron, its truth table: bit `a` is the neuron's output (`1` = `+1`) when its
    /// inputs spell `a`, input `i` in bit `i` (`1` = `+1`). Bits from `2^fan_in` on are zero.
    pub tables: Vec<u64>,
}

impl Lut {
    /// Neurons.
    pub fn neurons(&self) -> usize {
        self.tables.len()
    }

    /// The inputs neuron `j` reads.
    pub fn inputs_of(&self, j: usize) -> &[u32] {
        &self.connections[j * self.fan_in..(j + 1) * self.fan_in]
    }

    /// Bits of a table.
    pub fn table_bits(&self) -> usize {
        1 << self.fan_in
    }

    /// The truth table of the threshold neuron `popcount(XNOR(w, x)) >= t` over `w.len()`
    /// inputs (`w[i]` = weight `+1` of input `i`).
    pub fn from_threshold(w: &[bool], t: u32) -> u64 {
        assert!(w.len() <= MAX_FAN_IN, "a table has at most 6 inputs");
        let mut table = 0u64;
        for a in 0..1u64 << w.len() {
            let matches = w
                .iter()
                .enumerate()
                .filter(|&(i, &wi)| ((a >> i) & 1 == 1) == wi)
                .count() as u32;
            if matches >= t {
                table |= 1 << a;
            }
        }
        table
    }

    /// The address neuron `j` looks up for packed `input`.
    #[inline]
    fn address(&self, j: usize, input: &[u64]) -> u32 {
        let mut a = 0u32;
        for (i, &src) in self.inputs_of(j).iter().enumerate() {
            let bit = (input[src as usize / 64] >> (src % 64)) & 1;
            a |= (bit as u32) << i;
        }
        a
    }
}

impl Semantics for Lut {
    fn kind(&self) -> &'static str {
        "lut"
    }

    fn produces(&self) -> Produces {
        Produces::Bits
    }

    fn notation(&self) -> String {
        format!("l{}f{}", self.neurons(), self.fan_in)
    }

    fn output_shape(&self, _input: Shape) -> Shape {
        Shape::flat(self.neurons())
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        if self.fan_in == 0 || self.fan_in > MAX_FAN_IN {
            return Err(format!(
                "has fan-in {}; between 1 and {MAX_FAN_IN} are possible",
                self.fan_in
            ));
        }
        if self.tables.is_empty() {
            return Err("has no neurons".into());
        }
        if self.connections.len() != self.neurons() * self.fan_in {
            return Err(format!(
                "has {} connections for {} neurons of fan-in {}",
                self.connections.len(),
                self.neurons(),
                self.fan_in
            ));
        }
        if let Some((at, &src)) = self
            .connections
            .iter()
            .enumerate()
            .find(|(_, &s)| s as usize >= input.len())
        {
            return Err(format!(
                "neuron {} reads input {src}, but it receives {} values",
                at / self.fan_in,
                input.len()
            ));
        }
        if self.fan_in < MAX_FAN_IN {
            let high = !((1u64 << self.table_bits()) - 1);
            if let Some(j) = self.tables.iter().position(|&t| t & high != 0) {
                return Err(format!(
                    "neuron {j}'s table sets bits past its {} entries",
                    self.table_bits()
                ));
            }
        }
        Ok(())
    }

    fn size_bits(&self) -> u64 {
        self.weight_bits()
    }

    fn weight_bits(&self) -> u64 {
        (self.neurons() * self.table_bits()) as u64
    }

    fn execute(&self, _shape: Shape, input: &[u64], _counts: &mut Vec<u32>, out: &mut Vec<u64>) {
        out.clear();
        out.resize(crate::bitslice::words_for(self.neurons()), 0);
        for (j, &table) in self.tables.iter().enumerate() {
            let a = self.address(j, input);
            out[j / 64] |= ((table >> a) & 1) << (j % 64);
        }
    }

    fn by_definition(&self, _shape: Shape, input: &[bool]) -> Values {
        Values::Bits(
            (0..self.neurons())
                .map(|j| {
                    let a: usize = self
                        .inputs_of(j)
                        .iter()
                        .enumerate()
                        .map(|(i, &s)| usize::from(input[s as usize]) << i)
                        .sum();
                    (self.tables[j] >> a) & 1 == 1
                })
                .collect(),
        )
    }
}

/// Why a logic-mapped layer has no core in the generated pipeline yet.
pub(crate) const NO_CORE: &str = "logic-mapped layers (kinds \"lut\" and \"group_sum\") have no \
                                  accelerator core yet; `cbnn eval` runs them";

impl Hardware for Lut {
    fn supported(&self) -> Result<(), String> {
        Err(NO_CORE.into())
    }

    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.fan_in,
            outputs: self.neurons(),
        }
    }

    fn estimate(&self, _input: Shape, _f: LayerFold) -> LayerEstimate {
        LayerEstimate::default()
    }

    fn images(&self, _f: LayerFold) -> Vec<MemoryImage> {
        Vec::new()
    }

    fn output_width(&self, _input: Shape) -> usize {
        self.neurons()
    }

    fn instantiate(&self, _site: &Site) -> String {
        unreachable!("{NO_CORE}")
    }
}
