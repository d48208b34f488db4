//! The output layer: binary dense weights whose popcounts are the class scores; the predicted
//! class is their argmax, ties to the lowest class.

use super::{
    matches_by_definition, mvtu, popcounts, Hardware, MemoryImage, Produces, Semantics, Shape,
    Site, Values,
};
use crate::vocab::bits::bits_for;
use crate::vocab::cost::{self, LayerEstimate};
use crate::vocab::fold::{LayerFold, LayerShape};
use crate::vocab::matrix::BinaryMatrix;

/// The output layer: `classes x inputs` ±1 weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scores {
    /// `classes x inputs` weights.
    pub weights: BinaryMatrix,
}

impl Scores {
    /// Bits of one class score (popcounts range over `0..=inputs`).
    pub fn score_bits(&self) -> usize {
        bits_for(self.weights.cols())
    }
}

impl Semantics for Scores {
    fn kind(&self) -> &'static str {
        "output"
    }

    fn produces(&self) -> Produces {
        Produces::Scores
    }

    fn notation(&self) -> String {
        format!("out{}", self.weights.rows())
    }

    fn output_shape(&self, _input: Shape) -> Shape {
        Shape::flat(self.weights.rows())
    }

    fn check(&self, input: Shape) -> Result<(), String> {
        if self.weights.cols() != input.len() {
            return Err(format!(
                "has {} inputs but receives {}",
                self.weights.cols(),
                input.len()
            ));
        }
        if self.weights.rows() < 2 {
            return Err(format!(
                "has {} classes; at least 2 needed",
                self.weights.rows()
            ));
        }
        Ok(())
    }

    fn size_bits(&self) -> u64 {
        self.weight_bits()
    }

    fn weight_bits(&self) -> u64 {
        self.weights.rows() as u64 * self.weights.cols() as u64
    }

    fn execute(&self, _shape: Shape, input: &[u64], counts: &mut Vec<u32>, _out: &mut Vec<u64>) {
        popcounts(&self.weights, input, counts);
    }

    fn by_definition(&self, _shape: Shape, input: &[bool]) -> Values {
        Values::Scores(
            (0..self.weights.rows())
                .map(|c| matches_by_definition(&self.weights, c, input))
                .collect(),
        )
    }
}

impl Hardware for Scores {
    fn unit(&self) -> LayerShape {
        LayerShape {
            inputs: self.weights.cols(),
            outputs: self.weights.rows(),
        }
    }

    fn estimate(&self, input: Shape, f: LayerFold) -> LayerEstimate {
        cost::gathered(cost::layer(&self.unit(), f, true), input)
    }

    fn images(&self, f: LayerFold) -> Vec<MemoryImage> {
        mvtu::images(&self.weights, None, f)
    }

    fn output_width(&self, _input: Shape) -> usize {
        self.weights.rows() * self.score_bits()
    }

    fn instantiate(&self, site: &Site) -> String {
        mvtu::instantiate(self.unit(), site, true)
    }
}
