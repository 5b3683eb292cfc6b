"""Flower runs at a hub, started by giftcloud's users: a researcher asks for one of the
apps the hub's runner offers, the runner (beside the SuperLink, in Flower's environment)
starts it on the SuperLink with who asked in its run configuration, and reports its state
and pooled result back here. The SuperLink's Control API stays with the runner."""
