//! The binary dense threshold layer: `N` inputs, `M` neurons, neuron `j` outputs `+1` iff
//! `popcount(XNOR(w_j, x)) >= T_j`.

use super::{
    check_thresholds, matches_by_definition, mvtu, popcounts, thresholded_size_bits, Hardware,
    MemoryImage, Produces, Semantics, Shape, Site, Values,
};
use crate::vocab::cost::{self, LayerEstimate};
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::matrix::BinaryMatrix;

/// A binary dense layer: ±1 weights and one threshold per neuron.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dense {
    /// `neurons x inputs` weights; the inputs are the received values in their packed order.
    pub weights: BinaryMatrix,
    /// Per neuron: output `+1` iff `popcount(XNOR(w, x)) >= threshold`; in `0..=inputs + 1`.
    pub thresholds: Vec<u32>,
}

impl Semantics for Dense {
    fn kind(&self) -> &'static str {
        "threshold"
    }

    fn produces(&self) -> Produces {
        Produces::Bits
    }

    fn notation(&self) -> String {
        format!("d{}", self.weights.rows())
    }

    fn output_shape(&self, _input: Shape) -> Shape {
        Shape::flat(self.weights.rows())
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        let inputs = input.len();
        if self.weights.cols() != inputs {
            return Err(format!(
                "has {} inputs but receives {inputs}",
                self.weights.cols()
            ));
        }
        check_thresholds(&self.weights, &self.thresholds, "neurons", "neuron")
    }

    fn size_bits(&self) -> u64 {
        thresholded_size_bits(&self.weights)
    }

    fn weight_bits(&self) -> u64 {
        self.weights.rows() as u64 * self.weights.cols() as u64
    }

    fn execute(&self, _shape: Shape, input: &[u64], counts: &mut Vec<u32>, out: &mut Vec<u64>) {
        popcounts(&self.weights, input, counts);
        out.clear();
        out.resize(crate::bitslice::words_for(self.weights.rows()), 0);
        for (j, (&c, &t)) in counts.iter().zip(&self.thresholds).enumerate() {
            if c >= t {
                out[j / 64] |= 1 << (j % 64);
            }
        }
    }

    fn by_definition(&self, _shape: Shape, input: &[bool]) -> Values {
        Values::Bits(
            (0..self.weights.rows())
                .map(|j| matches_by_definition(&self.weights, j, input) >= self.thresholds[j])
                .collect(),
        )
    }
}

impl Hardware for Dense {
    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.weights.cols(),
            outputs: self.weights.rows(),
        }
    }

    fn estimate(&self, input: Shape, f: LayerFold) -> LayerEstimate {
        cost::gathered(cost::layer(&self.unit(), f, false), input)
    }

    fn images(&self, f: LayerFold) -> Vec<MemoryImage> {
        mvtu::images(&self.weights, Some(&self.thresholds), f)
    }

    fn output_width(&self, _input: Shape) -> usize {
        self.weights.rows()
    }

    fn instantiate(&self, site: &Site) -> String {
        mvtu::instantiate(self.unit(), site, false)
    }
}
