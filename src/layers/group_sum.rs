//! The group-sum output layer (`group_sum`): the `N` values it receives fall into one group of
//! `N / classes` consecutive values per class, and a class's score is the number of `+1` in
//! its group; the predicted class is the argmax, ties to the lowest class. It has no weights:
//! it is how a logic-mapped network (layers of kind `lut`) turns its last layer's bits into
//! class scores.

use super::{Hardware, MemoryImage, Produces, Semantics, Shape, Site, Values};
use crate::vocab::bits::bits_for;
use crate::vocab::cost::{self, LayerEstimate};
use crate::vocab::fold::{LayerFold, LayerShape};

/// Class scores as the `+1` counts of equal groups of the received values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSum {
    /// Classes (groups).
    pub classes: usize,
}

impl GroupSum {
    /// Values of one group when the layer receives `n`.
    pub fn group(&self, n: usize) -> usize {
        n / self.classes
    }

    /// Bits of one class score when the layer receives `n` values (scores range over
    /// `0..=n / classes`).
    pub fn score_bits(&self, n: usize) -> usize {
        bits_for(self.group(n))
    }
}

impl Semantics for GroupSum {
    fn kind(&self) -> &'static str {
        "group_sum"
    }

    fn produces(&self) -> Produces {
        Produces::Scores
    }

    fn notation(&self) -> String {
        format!("sum{}", self.classes)
    }

    fn output_shape(&self, _input: Shape) -> Shape {
        Shape::flat(self.classes)
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        if self.classes < 2 {
            return Err(format!("has {} classes; at least 2 needed", self.classes));
        }
        let n = input.len();
        if n < self.classes || !n.is_multiple_of(self.classes) {
            return Err(format!(
                "receives {n} values, which do not split into {} equal groups",
                self.classes
            ));
        }
        Ok(())
    }

    fn size_bits(&self) -> u64 {
        0
    }

    fn weight_bits(&self) -> u64 {
        0
    }

    fn execute(&self, shape: Shape, input: &[u64], counts: &mut Vec<u32>, _out: &mut Vec<u64>) {
        let g = self.group(shape.len());
        counts.clear();
        counts.extend((0..self.classes).map(|c| {
            let mut n = 0;
            let (mut at, end) = (c * g, (c + 1) * g);
            while at < end {
                let take = (end - at).min(64 - at % 64);
                n += super::bits_at(input, at, take).count_ones();
                at += take;
            }
            n
        }));
    }

    fn by_definition(&self, shape: Shape, input: &[bool]) -> Values {
        let g = self.group(shape.len());
        Values::Scores(
            (0..self.classes)
                .map(|c| input[c * g..(c + 1) * g].iter().filter(|&&b| b).count() as u32)
                .collect(),
        )
    }
}

impl Hardware for GroupSum {
    fn logic_mapped(&self) -> bool {
        true
    }

    /// Fully parallel, with `pipe` register stages (0 or 1) behind the popcounts.
    fn default_fold(&self, pipe: usize) -> LayerFold {
        let s = self.unit();
        LayerFold {
            pe: s.outputs,
            simd: s.inputs,
            pipe: pipe.min(1),
        }
    }

    /// Fully parallel; `PIPE` 1 registers the scores behind the popcounts (a shorter critical
    /// path for one more cycle of latency).
    fn check_fold(&self, f: LayerFold) -> Result<(), String> {
        let s = self.unit();
        if f.pe != s.outputs || f.simd != s.inputs || f.pipe > 1 {
            return Err(format!(
                "is logic-mapped: it has only the fully parallel folding (PE {}, SIMD {}, PIPE \
                 0 or 1)",
                s.outputs, s.inputs
            ));
        }
        Ok(())
    }

    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: 1,
            outputs: self.classes,
        }
    }

    fn estimate(&self, input: Shape, f: LayerFold) -> LayerEstimate {
        let mut e = cost::group_sums(input.len());
        e.ffs += (f.pipe * self.classes * self.score_bits(input.len())) as u64;
        e
    }

    fn images(&self, _f: LayerFold) -> Vec<MemoryImage> {
        Vec::new()
    }

    fn output_width(&self, input: Shape) -> usize {
        self.classes * self.score_bits(input.len())
    }

    fn instantiate(&self, site: &Site) -> String {
        use std::fmt::Write;
        let n = site.input_shape.len();
        let (g, sb) = (self.group(n), self.score_bits(n));
        let input = &site.input;
        let width = self.classes * sb;
        let mut v = format!(
            "    // {}: class c's score is the number of +1 among inputs [c * {g} +: {g}]\n    \
             wire [{}:0] scores;\n    wire scores_valid;\n",
            site.name,
            width - 1
        );
        // With PIPE 1 the counts are registered, a stage of the pipeline like the others.
        let sums = if site.fold.pipe == 1 {
            let _ = writeln!(
                v,
                "    wire [{}:0] sums;\n    cbnn_pipe #(.W({width})) u_sums (.clk(ap_clk), .rst_n(ap_rst_n), \
                 .en(scores_ready),\n        .d(sums), .d_valid({input}_valid), .q(scores), .q_valid(scores_valid));",
                width - 1
            );
            "sums"
        } else {
            let _ = writeln!(v, "    assign scores_valid = {input}_valid;");
            "scores"
        };
        for c in 0..self.classes {
            let _ = writeln!(
                v,
                "    cbnn_popcount #(.W({g}), .OW({sb}), .LEAF(6)) u_sum{c} (.clk(ap_clk), .en(1'b1), \
                 .in({input}[{}:{}]), .count({sums}[{}:{}]));",
                (c + 1) * g - 1,
                c * g,
                (c + 1) * sb - 1,
                c * sb
            );
        }
        v
    }
}
