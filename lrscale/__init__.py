"""What every floor of lrscale shares (the bottom floor): how commands end on a signal."""
