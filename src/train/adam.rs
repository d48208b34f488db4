//! Adam, with the first layer's gradient assembled on the fly from its accumulator.

use rayon::prelude::*;

use super::first_layer::Layout;
use super::net::{Net, Param};

/// Adam state shared by all parameters.
#[derive(Clone, Debug)]
pub struct Adam {
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
    /// Steps taken.
    pub t: u64,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
        }
    }
}

#[derive(Clone, Copy)]
struct Coeffs {
    b1: f32,
    b2: f32,
    eps: f32,
    step: f32,
}

#[inline(always)]
fn update(c: Coeffs, w: &mut f32, m: &mut f32, v: &mut f32, g: f32, clip: bool) {
    *m = c.b1 * *m + (1.0 - c.b1) * g;
    *v = c.b2 * *v + (1.0 - c.b2) * g * g;
    let mut x = *w - c.step * *m / (v.sqrt() + c.eps);
    if clip {
        x = x.clamp(-1.0, 1.0);
    }
    *w = x;
}

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

fn update_param(c: Coeffs, p: &mut Param) {
    let clip = p.clip;
    p.value
        .par_chunks_mut(CHUNK)
        .zip(p.m.par_chunks_mut(CHUNK))
        .zip(p.v.par_chunks_mut(CHUNK))
        .zip(p.grad.par_chunks(CHUNK))
        .for_each(|(((w, m), v), g)| {
            for i in 0..w.len() {
                update(c, &mut w[i], &mut m[i], &mut v[i], g[i], clip);
            }
        });
}

fn update_first(c: Coeffs, layout: Layout, p: &mut Param, offset: &[f32]) {
    let clip = p.clip;
    let (mut w, mut m, mut v, mut g) = (&mut p.value[..], &mut p.m[..], &mut p.v[..], &p.grad[..]);
    for k in 0..layout.blocks() {
        let (c0, bw) = layout.block(k);
        let len = bw * layout.inputs;
        let (wk, wr) = w.split_at_mut(len);
        let (mk, mr) = m.split_at_mut(len);
        let (vk, vr) = v.split_at_mut(len);
        let (gk, gr) = g.split_at(len);
        (w, m, v, g) = (wr, mr, vr, gr);
        let off = &offset[c0..c0 + bw];
        let chunk = bw * (CHUNK / bw).max(1);
        wk.par_chunks_mut(chunk)
            .zip(mk.par_chunks_mut(chunk))
            .zip(vk.par_chunks_mut(chunk))
            .zip(gk.par_chunks(chunk))
            .for_each(|(((w, m), v), g)| {
                for (((w, m), v), g) in w
                    .chunks_exact_mut(bw)
                    .zip(m.chunks_exact_mut(bw))
                    .zip(v.chunks_exact_mut(bw))
                    .zip(g.chunks_exact(bw))
                {
                    for j in 0..bw {
                        let grad = 2.0 * g[j] - off[j];
                        update(c, &mut w[j], &mut m[j], &mut v[j], grad, clip);
                    }
                }
            });
    }
}

impl Adam {
    fn coeffs(&mut self, lr: f32) -> Coeffs {
        self.t += 1;
        let t = self.t as i32;
        Coeffs {
            b1: self.beta1,
            b2: self.beta2,
            eps: self.eps,
            step: lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t)),
        }
    }

    /// One update of each of `params` (their `grad` as it is) with learning rate `lr`.
    pub fn step_params(&mut self, params: Vec<&mut Param>, lr: f32) {
        let c = self.coeffs(lr);
        for p in params {
            update_param(c, p);
        }
    }

    /// One update of every parameter of `net` with learning rate `lr`; `first_offset` is the
    /// first layer's gradient offset from the backward pass.
    pub fn step(&mut self, net: &mut Net, lr: f32, first_offset: &[f32]) {
        let c = self.coeffs(lr);
        let layout = net.first_layout();
        update_first(c, layout, &mut net.w1, first_offset);
        for p in net.params_mut().into_iter().skip(1) {
            update_param(c, p);
        }
    }
}
