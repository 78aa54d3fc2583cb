"""The local fits: barycentric weights, and the modified, hessian and ltsa local matrices."""
