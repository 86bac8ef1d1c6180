from neuromodmap.cli import main

main()
