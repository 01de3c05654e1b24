"""What is computed: experts (stage 1), later fusion and quality, as batch callables."""
