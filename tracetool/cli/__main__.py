from tracetool.cli.main import main

main()
