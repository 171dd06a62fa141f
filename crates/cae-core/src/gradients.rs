//! The gradient of a loss with respect to a model's parameters, keyed by the parameters themselves.
use candle_core::backprop::GradStore;
use candle_core::Tensor;

/// The gradient of one objective with respect to each of a model's parameters.
///
/// Gradients are keyed by the parameter tensors (the model's variables), as candle's [`GradStore`]
/// keys them, so any optimizer over the model's `Var`s takes them ([`Gradients::grad_store`]);
/// the parameters' names come along, in the model's order, for reports and tests.
#[derive(Debug)]
pub struct Gradients {
    /// Every parameter of the model, with its name.
    parameters: Vec<(String, Tensor)>,
    store: GradStore,
}

impl Gradients {
    /// No gradient yet for any of `parameters`.
    pub(crate) fn new(parameters: Vec<(String, Tensor)>) -> Self {
        Self {
            parameters,
            store: GradStore::default(),
        }
    }

    /// Adds `grad` to the gradient of `parameter` (or sets it, when it has none yet).
    pub(crate) fn accumulate(
        &mut self,
        parameter: &Tensor,
        grad: Tensor,
    ) -> candle_core::Result<()> {
        let sum = match self.store.remove(parameter) {
            Some(previous) => (previous + grad)?,
            None => grad,
        };
        self.store.insert(parameter, sum);
        Ok(())
    }

    /// The gradient with respect to `parameter` (a tensor of the model, e.g. a `Var`'s).
    pub fn get(&self, parameter: &Tensor) -> Option<&Tensor> {
        self.store.get(parameter)
    }

    /// The gradient with respect to the parameter named `name` (`encoder.0.weight`, ...).
    pub fn by_name(&self, name: &str) -> Option<&Tensor> {
        let (_, parameter) = self.parameters.iter().find(|(n, _)| n == name)?;
        self.get(parameter)
    }

    /// `(name, gradient)` for every parameter that has a gradient, in the model's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> + '_ {
        self.parameters
            .iter()
            .filter_map(|(name, parameter)| Some((name.as_str(), self.get(parameter)?)))
    }

    /// How many parameters have a gradient.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no parameter has a gradient.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gradients as candle keeps them, for a `candle_nn::Optimizer`.
    pub fn grad_store(&self) -> &GradStore {
        &self.store
    }
}

// `GradStore` is not `Clone`; its tensors are shared handles, so a copy is cheap.
impl Clone for Gradients {
    fn clone(&self) -> Self {
        let mut store = GradStore::default();
        for id in self.store.get_ids() {
            if let Some(grad) = self.store.get_id(*id) {
                store.insert_id(*id, grad.clone());
            }
        }
        Self {
            parameters: self.parameters.clone(),
            store,
        }
    }
}
