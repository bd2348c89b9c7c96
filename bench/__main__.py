from texbench.cli import main

main()
