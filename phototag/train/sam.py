"""Sharpness-Aware Minimisation (Foret et al., ICLR 2021), with the adaptive variant (ASAM,
Kwon et al., ICML 2021), around any base optimiser.

Each step takes two forward/backward passes: the first at the weights w gives the gradient g and
the ascent e = rho · g / ‖g‖ (adaptive: scaled elementwise by |w|²); the second at w + e gives the
gradient the base optimiser then applies at w. Batch-norm running statistics are updated by the
first pass only, so the perturbed weights never leak into them.
"""

import torch
from torch import nn


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **base_options):
        if rho < 0:
            raise ValueError(f"rho must be non-negative, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_options))
        self.base_optimizer = base_optimizer(self.param_groups, **base_options)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self):
        norms = [
            ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        return torch.norm(torch.stack(norms), p=2) if norms else torch.tensor(0.0)

    @torch.no_grad()
    def first_step(self, zero_grad=True):
        """Move to the worst nearby point w + e."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                e = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=True):
        """Back to w, then the base optimiser's step with the gradient taken at w + e."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or "old_p" not in self.state[p]:
                    continue
                p.data = self.state[p].pop("old_p")
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure=None):
        """The whole SAM step, called the usual PyTorch way: ``closure`` clears the gradients,
        runs forward and backward and returns the loss. It runs twice: at w for the ascent,
        then at w + e for the gradient the base optimiser applies. (Batch-norm statistics:
        use first_step/second_step with ``freeze_running_stats`` to keep the second pass out
        of them, as the trainer does.)"""
        if closure is None:
            raise ValueError("SAM needs a closure (zero_grad, forward, backward) for its two passes")
        closure = torch.enable_grad()(closure)
        self.zero_grad()
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step(zero_grad=True)
        return loss

    def state_dict(self):
        # The moments and step counts live in the base optimiser; SAM keeps nothing between steps.
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def _is_batch_norm(module):
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def freeze_running_stats(model):
    """For SAM's second pass: batch norm normalises with the batch but updates nothing."""
    for module in model.modules():
        if _is_batch_norm(module):
            module.backup_momentum = module.momentum
            module.momentum = 0.0


def restore_running_stats(model):
    for module in model.modules():
        if _is_batch_norm(module) and hasattr(module, "backup_momentum"):
            module.momentum = module.backup_momentum
            del module.backup_momentum
