//! The sparse truth-table layer (`lut`): `M` neurons, each reading `F <= 6` of the values it
//! receives, chosen by explicit index, and looking its output up in a truth table of `2^F`
//! bits. A binary neuron with at most six inputs is any boolean function of them, which is
//! what one LUT6 of an FPGA computes; a sparse XNOR-popcount threshold neuron is one such
//! table (`Lut::from_threshold`).

use super::{Hardware, MemoryImage, Produces, Semantics, Shape, Site, Values};
use crate::vocab::cost::{self, LayerEstimate};
use crate::vocab::fold::{LayerFold, LayerShape};

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

impl Lut {
    /// The received values some neuron reads, in increasing order: for a first layer, the
    /// input bits (pixel x plane) the accelerator's port carries.
    pub fn reads(&self) -> Vec<u32> {
        let mut v = self.connections.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The same layer reading `reads[k]` as input `k` (its connections renumbered into the
    /// list [`Lut::reads`] gives).
    pub fn on_reads(&self, reads: &[u32]) -> Lut {
        Lut {
            connections: self
                .connections
                .iter()
                .map(|c| reads.binary_search(c).expect("a read input") as u32)
                .collect(),
            ..self.clone()
        }
    }
}

/// Widest constant the generated top level writes (Verilator's limit is 2^16 bits).
const MAX_LITERAL_BITS: usize = 1 << 15;

impl Hardware for Lut {
    fn logic_mapped(&self) -> bool {
        true
    }

    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.fan_in,
            outputs: self.neurons(),
        }
    }

    fn estimate(&self, _input: Shape, _f: LayerFold) -> LayerEstimate {
        cost::tables(self.neurons(), self.fan_in)
    }

    fn images(&self, _f: LayerFold) -> Vec<MemoryImage> {
        Vec::new()
    }

    fn output_width(&self, _input: Shape) -> usize {
        self.neurons()
    }

    fn instantiate(&self, site: &Site) -> String {
        use std::fmt::Write;
        let (n, m, f) = (site.input_shape.len(), self.neurons(), self.fan_in);
        let aw = crate::vocab::bits::bits_for(n - 1);
        let (name, lower) = (&site.name, site.name.to_lowercase());
        let (input, output) = (&site.input, &site.output);
        let mut v = format!(
            "    // {name}: {m} truth-table neurons of fan-in {f} over {n} inputs, then a register stage\n    \
             wire [{}:0] {lower}_y;\n",
            m - 1
        );
        // Verilator takes literals of at most 2^16 bits: neurons go in blocks whose wiring and
        // tables stay below that.
        let block = (MAX_LITERAL_BITS / (f * aw).max(1 << f)).max(1);
        for (k, first) in (0..m).step_by(block).enumerate() {
            let last = (first + block).min(m);
            let conn: Vec<bool> = self.connections[first * f..last * f]
                .iter()
                .flat_map(|&c| (0..aw).map(move |b| (c >> b) & 1 == 1))
                .collect();
            let tables: Vec<bool> = self.tables[first..last]
                .iter()
                .flat_map(|&t| (0..1usize << f).map(move |a| (t >> a) & 1 == 1))
                .collect();
            let _ = writeln!(
                v,
                "    cbnn_lut #(.N({n}), .M({}), .F({f}), .AW({aw}),\n        .CONN({}),\n        \
                 .TABLES({}))\n        u_{lower}_{k} (.x({input}), .y({lower}_y[{}:{first}]));",
                last - first,
                super::verilog_bits(&conn),
                super::verilog_bits(&tables),
                last - 1
            );
        }
        let _ = write!(
            v,
            "    wire [{m1}:0] {output};\n    wire {output}_valid;\n    \
             cbnn_pipe #(.W({m})) u_{lower}_reg (.clk(ap_clk), .rst_n(ap_rst_n), .en(scores_ready),\n        \
             .d({lower}_y), .d_valid({input}_valid), .q({output}), .q_valid({output}_valid));\n",
            m1 = m - 1,
        );
        v
    }
}
