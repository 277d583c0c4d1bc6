from tracetool.cli.launch import main

main()
