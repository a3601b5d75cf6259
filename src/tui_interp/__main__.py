from tui_interp.cli import main

main()
