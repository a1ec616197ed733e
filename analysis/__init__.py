"""Reading sweep results, finding the optimal learning rate, fitting scaling laws, plotting."""
