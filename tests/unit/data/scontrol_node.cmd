scontrol --all --oneliner show node
# live cluster: note the OS= value contains spaces
