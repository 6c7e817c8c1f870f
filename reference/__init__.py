"""The numpy reference kernels: the specification of edgecnn's arithmetic."""
